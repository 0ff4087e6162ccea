package server

import (
	"testing"

	"github.com/truenester/leadrelay"
)

// BenchmarkDecodeLead decodes the contact form bench-intake posts.
func BenchmarkDecodeLead(b *testing.B) {
	body := []byte(`{"device_info":{"browser":"Chrome","device_type":"mobile","os":"Android"},"email":"load-1764461234-42@example.com","message":"Interested in a 2-bed in Dubai Marina (lead 42)","metadata":{"country":"AE","landing_page":"/properties/marina","referrer":"https://www.google.com/","utm_campaign":"marina-2br","utm_medium":"cpc","utm_source":"google"},"name":"Load Test","phone":"0500000042","source":"website"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeLead(leadrelay.FormContact, body, "bench-1764461234-42"); err != nil {
			b.Fatal(err)
		}
	}
}

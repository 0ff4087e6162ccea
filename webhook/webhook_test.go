package webhook_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/truenester/leadrelay/webhook"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	key, err := webhook.Key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"INSERT","table":"lead_events"}`)
	at := time.Unix(1_790_000_000, 0)
	signed := func() http.Header {
		h := http.Header{}
		webhook.Headers(h, key, "evt_1", at, body)
		return h
	}
	tests := []struct {
		name   string
		header func() http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", signed, body, at.Add(time.Minute), nil},
		{"rotated: second signature valid", func() http.Header {
			h := signed()
			h.Set("webhook-signature", "v1,AAAA "+h.Get("webhook-signature"))
			return h
		}, body, at, nil},
		{"body changed", signed, []byte(`{"type":"DELETE"}`), at, webhook.ErrSignature},
		{"wrong key", func() http.Header {
			h := http.Header{}
			webhook.Headers(h, []byte("another key"), "evt_1", at, body)
			return h
		}, body, at, webhook.ErrSignature},
		{"stale", signed, body, at.Add(6 * time.Minute), webhook.ErrStale},
		{"from the future", signed, body, at.Add(-6 * time.Minute), webhook.ErrStale},
		{"missing signature", func() http.Header {
			h := signed()
			h.Del("webhook-signature")
			return h
		}, body, at, webhook.ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := webhook.Verify(key, tt.header(), tt.body, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %q, %v; want %v", id, err, tt.want)
			}
			if err == nil && id != "evt_1" {
				t.Fatalf("id = %q", id)
			}
		})
	}
}

// The Standard Webhooks specification's own example.
func TestSignMatchesTheSpecification(t *testing.T) {
	t.Parallel()
	key, err := webhook.Key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestKeyRejectsBadBase64(t *testing.T) {
	t.Parallel()
	if _, err := webhook.Key("whsec_not base64!"); err == nil {
		t.Fatal("no error")
	}
}

package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// With TRUST_PROXY_HEADERS=x-forwarded-for, a client that reaches the service
// directly (its address is not in TRUSTED_PROXIES) cannot get a fresh bucket
// by writing a new X-Forwarded-For on every request.
func TestASpoofedXForwardedForGetsNoFreshBucket(t *testing.T) {
	t.Parallel()
	// The test talks over loopback; TRUSTED_PROXIES leaves loopback out, so
	// the test client is a visitor reaching the service directly.
	b := setup(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_BURST": "1",
		"TRUST_PROXY_HEADERS": "x-forwarded-for", "TRUSTED_PROXIES": "10.0.0.0/8"})
	b.post(t, "/api/submit-contact", `{"email": "s1@example.com"}`, "X-Forwarded-For", "198.51.100.1").lead(t, http.StatusCreated)
	b.post(t, "/api/submit-contact", `{"email": "s2@example.com"}`, "X-Forwarded-For", "198.51.100.2").error(t, http.StatusTooManyRequests, "rate_limited")
	b.post(t, "/api/submit-contact", `{"email": "s3@example.com"}`, "X-Forwarded-For", "198.51.100.3, 10.0.0.1").error(t, http.StatusTooManyRequests, "rate_limited")
	// The operator hears of it once: a forger, or a proxy missing from the list.
	if n := strings.Count(b.logs.String(), "outside TRUSTED_PROXIES"); n != 1 {
		t.Errorf("the untrusted proxy header was logged %d times, want once", n)
	}
}

// Behind a trusted proxy (loopback is trusted by default), each address the
// proxy appended has a bucket of its own, whatever the client wrote before it.
func TestBehindATrustedProxyTheAppendedAddressCounts(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "1", "RATE_LIMIT_BURST": "1", "TRUST_PROXY_HEADERS": "x-forwarded-for"})
	b.post(t, "/api/submit-contact", `{"email": "p1@example.com"}`, "X-Forwarded-For", "6.6.6.6, 198.51.100.1").lead(t, http.StatusCreated)
	b.post(t, "/api/submit-contact", `{"email": "p2@example.com"}`, "X-Forwarded-For", "7.7.7.7, 198.51.100.1").error(t, http.StatusTooManyRequests, "rate_limited")
	b.post(t, "/api/submit-contact", `{"email": "p3@example.com"}`, "X-Forwarded-For", "198.51.100.2").lead(t, http.StatusCreated)
}

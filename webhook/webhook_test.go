package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/webhook"
	"github.com/truenester/leadrelay/webhook/webhooktest"
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

func TestKeyReadsSecretsAsTheReferenceLibrariesDo(t *testing.T) {
	t.Parallel()
	want := []byte("a 24-byte key, not text!")
	for _, secret := range []string{
		"whsec_" + base64.StdEncoding.EncodeToString(want),
		base64.StdEncoding.EncodeToString(want), // whsec_ is optional
	} {
		key, err := webhook.Key(secret)
		if err != nil || !bytes.Equal(key, want) {
			t.Errorf("Key(%q) = %q, %v; want %q", secret, key, err, want)
		}
	}
	for _, secret := range []string{
		"whsec_not base64!",
		"plain secret",                    // once used as its own bytes: no longer
		"whsec_",                          // empty
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", // unpadded: the reference decoder refuses it too
	} {
		if key, err := webhook.Key(secret); err == nil {
			t.Errorf("Key(%q) = %q, want an error", secret, key)
		} else if strings.Contains(err.Error(), secret) && secret != "whsec_" {
			t.Errorf("the error %q quotes the secret", err)
		}
	}
}

// Both ways with the reference library (npm standardwebhooks): the same
// signature for the same message, each accepting what the other signs.
func TestSignAndVerifyAgreeWithTheReferenceLibrary(t *testing.T) {
	t.Parallel()
	ref := webhooktest.New(t)
	key := []byte("a 24-byte key, not text!")
	body := []byte(`{"type":"INSERT","record":{"name":"Zoë \u202e"},"n":1}`)
	now := time.Now()
	for _, secret := range []string{"whsec_" + base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(key)} {
		k, err := webhook.Key(secret)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := webhook.Sign(k, "msg_1", now, body), ref.Sign(t, secret, "msg_1", now, body); got != want {
			t.Errorf("secret %.10s...: Sign = %s, the library signs %s", secret, got, want)
		}
		ours := http.Header{}
		webhook.Headers(ours, k, "msg_2", now, body)
		if err := ref.Verify(t, secret, ours, body); err != nil {
			t.Errorf("secret %.10s...: the library rejects our signature: %v", secret, err)
		}
		theirs := http.Header{}
		ref.Headers(t, theirs, secret, "msg_3", now, body)
		if id, err := webhook.Verify(k, theirs, body, now); err != nil || id != "msg_3" {
			t.Errorf("secret %.10s...: Verify of the library's signature = %q, %v", secret, id, err)
		}
	}
}

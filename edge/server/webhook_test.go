package server_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/truenester/leadrelay/edge/server"
	"github.com/truenester/leadrelay/webhook/webhooktest"
)

// A database webhook signed by the reference Standard Webhooks library is
// accepted, whether the secret is written with whsec_ or without it, and a
// wrong signature is refused.
func TestTheReceiverAcceptsWhatTheReferenceLibrarySigns(t *testing.T) {
	t.Parallel()
	ref := webhooktest.New(t)
	key := []byte("the receiver's 24-byte key")
	for _, secret := range []string{
		"whsec_" + base64.StdEncoding.EncodeToString(key),
		base64.StdEncoding.EncodeToString(key),
	} {
		var rang atomic.Int32
		b := setup(t, map[string]string{"WEBHOOK_SECRET": secret}, func(d *server.Deps) { d.Doorbell = func() { rang.Add(1) } })
		const id = "6b0c3f52-2a4e-4d0e-9b1e-1f1c2d3e4f50"
		body := []byte(`{"type":"INSERT","table":"lead_events","schema":"public","record":{"id":"` + id + `","event_type":"lead.created"},"old_record":null}`)

		signed := func(signer string) *http.Request {
			req, err := http.NewRequest(http.MethodPost, b.url+"/webhooks/lead-events", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			ref.Headers(t, req.Header, signer, id, time.Now(), body)
			return req
		}
		if a := do(t, signed(secret)); a.status != http.StatusAccepted {
			t.Errorf("secret %.10s...: signed by the reference library: %d %s, want 202", secret, a.status, a.body)
		}
		if rang.Load() != 1 {
			t.Errorf("secret %.10s...: the doorbell rang %d times, want 1", secret, rang.Load())
		}
		other := base64.StdEncoding.EncodeToString([]byte("somebody else's key"))
		if a := do(t, signed(other)); a.status != http.StatusUnauthorized {
			t.Errorf("secret %.10s...: signed with another key: %d, want 401", secret, a.status)
		}
	}
}

package notifiers

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/webhook"
	"github.com/truenester/leadrelay/webhook/webhooktest"
)

// crmKey is the CRM's shared secret, in Standard Webhooks' whsec_ form.
var crmKey = []byte("a CRM webhook signing key, 32 b!")

var crmSecret = "whsec_" + base64.StdEncoding.EncodeToString(crmKey)

// crmPeer is a Standard Webhooks consumer: it verifies each request against
// its key, over the exact bytes received, and answers a bad or stale
// signature with 401.
type crmPeer struct {
	srv      *httptest.Server
	key      []byte
	status   int // answer to a valid request
	mu       sync.Mutex
	received []crmRequest
}

type crmRequest struct {
	id      string
	payload crmPayload
}

func newCRMPeer(t *testing.T, key []byte, status int) *crmPeer {
	t.Helper()
	p := &crmPeer{key: key, status: status}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *crmPeer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	id, err := webhook.Verify(p.key, r.Header, body, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var payload crmPayload
	if err := json.Unmarshal(body, &payload); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	if p.status != http.StatusOK {
		http.Error(w, "crm unavailable", p.status)
		return
	}
	p.mu.Lock()
	p.received = append(p.received, crmRequest{id: id, payload: payload})
	p.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (p *crmPeer) requests() []crmRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]crmRequest(nil), p.received...)
}

func TestCRMPostsSignedAlert(t *testing.T) {
	t.Parallel()
	peer := newCRMPeer(t, crmKey, http.StatusOK)
	c, err := NewCRM(CRMConfig{WebhookURL: peer.srv.URL + "/hooks/leads", Secret: crmSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received := peer.requests()
	if len(received) != 1 {
		t.Fatalf("peer received %d requests, want 1", len(received))
	}
	got := received[0]
	if got.id != testAlert().EventID || got.payload.Type != leadrelay.EventLeadCreated {
		t.Errorf("webhook-id %q type %q, want the event id and lead.created", got.id, got.payload.Type)
	}
	if !reflect.DeepEqual(got.payload.Data, testAlert()) {
		t.Errorf("data = %+v\nwant %+v", got.payload.Data, testAlert())
	}
}

func TestCRMClassifiesAnswers(t *testing.T) {
	t.Parallel()
	wrongKey := newCRMPeer(t, crmKey, http.StatusOK)
	down := newCRMPeer(t, crmKey, http.StatusServiceUnavailable)
	tests := []struct {
		name      string
		url       string
		secret    string
		status    int
		permanent bool
	}{
		{"signed with the wrong secret", wrongKey.srv.URL, "whsec_" + base64.StdEncoding.EncodeToString([]byte("another key")), 401, true},
		{"CRM down", down.srv.URL, crmSecret, 503, false},
	}
	for _, tt := range tests {
		c, err := NewCRM(CRMConfig{WebhookURL: tt.url, Secret: tt.secret})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Send(t.Context(), testAlert())
		var de *DeliveryError
		if !errors.As(err, &de) || de.Status != tt.status || de.Permanent != tt.permanent || de.Channel != leadrelay.ChannelCRM {
			t.Errorf("%s: err = %v, want status %d permanent %v", tt.name, err, tt.status, tt.permanent)
		}
	}
}

// A secret without the whsec_ prefix is base64 all the same, as the
// reference libraries read it: the key is its decoding, never its text.
func TestCRMSecretWithoutPrefixIsBase64(t *testing.T) {
	t.Parallel()
	peer := newCRMPeer(t, crmKey, http.StatusOK)
	c, err := NewCRM(CRMConfig{WebhookURL: peer.srv.URL, Secret: base64.StdEncoding.EncodeToString(crmKey)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if n := len(peer.requests()); n != 1 {
		t.Errorf("peer accepted %d requests, want 1", n)
	}
	if _, err := NewCRM(CRMConfig{WebhookURL: peer.srv.URL, Secret: "plain secret"}); err == nil || !strings.Contains(err.Error(), "CRM_WEBHOOK_SECRET") {
		t.Errorf("a secret that is not base64: err = %v, want one naming CRM_WEBHOOK_SECRET", err)
	}
}

// The CRM verifies with the reference Standard Webhooks library: every
// delivery, signed with the secret in either form, passes its check, and a
// CRM holding another secret rejects it.
func TestTheReferenceLibraryAcceptsWhatTheCRMSigns(t *testing.T) {
	t.Parallel()
	ref := webhooktest.New(t)
	type received struct {
		header http.Header
		body   []byte
	}
	got := make(chan received, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read the CRM request: %v", err)
		}
		got <- received{r.Header.Clone(), body}
	}))
	t.Cleanup(srv.Close)
	for _, secret := range []string{crmSecret, base64.StdEncoding.EncodeToString(crmKey)} {
		c, err := NewCRM(CRMConfig{WebhookURL: srv.URL, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		a := testAlert()
		a.Name = "Zoë \u202eevil\u202c <b>&amp;</b> \"quoted\"" // bytes JSON escapes: signed as sent
		if err := c.Send(t.Context(), a); err != nil {
			t.Fatalf("Send: %v", err)
		}
		r := <-got
		if err := ref.Verify(t, secret, r.header, r.body); err != nil {
			t.Errorf("secret %.10s...: the reference library rejects the delivery: %v", secret, err)
		}
		if err := ref.Verify(t, base64.StdEncoding.EncodeToString([]byte("another CRM's key")), r.header, r.body); err == nil {
			t.Errorf("secret %.10s...: the reference library accepted it under another key", secret)
		}
	}
}

// The CRM stamps webhook-timestamp and the envelope's timestamp with its
// clock, the one the whole process reads.
func TestTheCRMReadsItsClock(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	headers := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	c, err := NewCRM(CRMConfig{WebhookURL: srv.URL, Secret: crmSecret, Clock: clockwork.NewFakeClockAt(at)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := (<-headers).Get("webhook-timestamp"); got != strconv.FormatInt(at.Unix(), 10) {
		t.Errorf("webhook-timestamp %s, want %d", got, at.Unix())
	}
}

package notifiers

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truenester/leadrelay"
)

const (
	twilioTestSID   = "AC0123456789abcdef0123456789abcdef"
	twilioTestToken = "s3cr3t-auth-token"
)

// twilioPeer plays Twilio's Messages API: basic auth with the account SID,
// a form with From, To and Body, Twilio's JSON error bodies, and its magic
// test numbers (+15005550001 is invalid; +15005550429 is rate limited).
type twilioPeer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	received []url.Values
}

func newTwilioPeer(t *testing.T) *twilioPeer {
	t.Helper()
	p := &twilioPeer{}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *twilioPeer) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(status, code int, message string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, message, code, status)
	}
	sid, token, ok := r.BasicAuth()
	if !ok || sid != twilioTestSID || token != twilioTestToken {
		fail(http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+twilioTestSID+"/Messages.json" {
		fail(http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, 21601, "Could not parse the request")
		return
	}
	to := r.PostForm.Get("To")
	switch {
	case utf16Len(r.PostForm.Get("Body")) > 1600:
		fail(http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	case to == "":
		fail(http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case strings.HasSuffix(to, "+15005550001"):
		fail(http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
		return
	case strings.HasSuffix(to, "+15005550429"):
		w.Header().Set("Retry-After", "3")
		fail(http.StatusTooManyRequests, 20429, "Too Many Requests")
		return
	}
	p.mu.Lock()
	p.received = append(p.received, r.PostForm)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`)
}

func (p *twilioPeer) config(to ...string) TwilioConfig {
	return TwilioConfig{AccountSID: twilioTestSID, AuthToken: twilioTestToken, APIBaseURL: p.srv.URL, From: "+15005550006", To: to}
}

func TestSMSDeliversToEveryRecipient(t *testing.T) {
	t.Parallel()
	peer := newTwilioPeer(t)
	s, err := NewSMS(peer.config("+971501234567", "+971509876543"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	if len(peer.received) != 2 {
		t.Fatalf("peer received %d messages, want 2", len(peer.received))
	}
	for i, to := range []string{"+971501234567", "+971509876543"} {
		form := peer.received[i]
		if form.Get("To") != to || form.Get("From") != "+15005550006" {
			t.Errorf("message %d: From %q To %q", i, form.Get("From"), form.Get("To"))
		}
		if form.Get("Body") != render(testAlert()).plainText() {
			t.Errorf("message %d: Body = %q", i, form.Get("Body"))
		}
	}
}

func TestWhatsAppPrefixesNumbers(t *testing.T) {
	t.Parallel()
	peer := newTwilioPeer(t)
	s, err := NewWhatsApp(peer.config("+971501234567", "whatsapp:+971509876543"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Channel() != leadrelay.ChannelWhatsApp {
		t.Errorf("Channel() = %q", s.Channel())
	}
	if err := s.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	peer.mu.Lock()
	defer peer.mu.Unlock()
	var got []string
	for _, form := range peer.received {
		got = append(got, form.Get("From")+" -> "+form.Get("To"))
	}
	want := "whatsapp:+15005550006 -> whatsapp:+971501234567, whatsapp:+15005550006 -> whatsapp:+971509876543"
	if strings.Join(got, ", ") != want {
		t.Errorf("messages = %q, want %q", got, want)
	}
}

func TestTwilioClassifiesAnswers(t *testing.T) {
	t.Parallel()
	peer := newTwilioPeer(t)
	badToken := peer.config("+971501234567")
	badToken.AuthToken = "wrong"
	tests := []struct {
		name       string
		cfg        TwilioConfig
		status     int
		response   string
		permanent  bool
		retryAfter time.Duration
	}{
		{"invalid number", peer.config("+15005550001"), 400, "Invalid 'To' Phone Number: +15005550001 (Twilio error 21211)", true, 0},
		{"bad credentials", badToken, 401, "Authenticate (Twilio error 20003)", true, 0},
		{"rate limited", peer.config("+15005550429"), 429, "Too Many Requests (Twilio error 20429)", false, 3 * time.Second},
	}
	for _, tt := range tests {
		s, err := NewSMS(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(t.Context(), testAlert())
		var de *DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v is not a *DeliveryError", tt.name, err)
			continue
		}
		if de.Channel != leadrelay.ChannelSMS || de.Status != tt.status || de.Response != tt.response ||
			IsPermanent(err) != tt.permanent || RetryAfter(err) != tt.retryAfter {
			t.Errorf("%s: got %+v, want status %d %q permanent %v retry after %v", tt.name, de, tt.status, tt.response, tt.permanent, tt.retryAfter)
		}
		if strings.Contains(err.Error(), twilioTestToken) {
			t.Errorf("%s: error leaks the auth token: %v", tt.name, err)
		}
	}
}

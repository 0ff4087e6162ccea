package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/dbtest"
)

func TestLeadFormsMatchTheSQLEnum(t *testing.T) {
	t.Parallel()
	var forms []string
	err := dbtest.New(t).QueryRow(context.Background(), "select enum_range(null::public.lead_form)::text[]").Scan(&forms)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{string(formContact), string(formPropertyInquiry), string(formChatbot)}
	if !slices.Equal(forms, want) {
		t.Errorf("public.lead_form is %q; server's leadForm holds %q", forms, want)
	}
}

func TestRedactKeepsTooLittleToContactAnyone(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"jane.doe@example.com": "j***@example.com",
		"Ülle@example.ee":      "Ü***@example.ee",
		"no-at-sign":           "***",
		"@example.com":         "***",
		"":                     "",
	} {
		if got := redactEmail(in); got != want {
			t.Errorf("redactEmail(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"+971501234567":    "+97150***67",
		"+971 50 123 4567": "+97150***67",
		"(050) 123-4567":   "050***67",
		"12345678":         "1***78",
		"12345":            "***",
		"":                 "",
	} {
		if got := redactPhone(in); got != want {
			t.Errorf("redactPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestTheLimiterRefillsAndForgetsIdleClients(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	l := newClientLimiter(6, 2, clock.now) // a token every 10s, 2 at most
	a := netip.MustParseAddr("198.51.100.7")
	for range 2 {
		if ok, _ := l.allow(a); !ok {
			t.Fatal("the burst was refused")
		}
	}
	ok, wait := l.allow(a)
	if ok || wait != 10*time.Second {
		t.Fatalf("third request: ok=%v wait=%s, want refused for 10s", ok, wait)
	}
	clock.advance(10 * time.Second)
	if ok, _ := l.allow(a); !ok {
		t.Fatal("refused after a token came back")
	}

	// Other clients have their own buckets; idle ones are forgotten once
	// full again, which is when forgetting them changes nothing.
	b := netip.MustParseAddr("2001:db8:1:2::1")
	if ok, _ := l.allow(b); !ok {
		t.Fatal("a second client was refused")
	}
	if len(l.buckets) != 2 {
		t.Fatalf("%d buckets, want 2", len(l.buckets))
	}
	clock.advance(20 * time.Second) // the refill time of a whole bucket
	if ok, _ := l.allow(netip.MustParseAddr("203.0.113.1")); !ok {
		t.Fatal("a third client was refused")
	}
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets after the idle ones refilled, want 1", len(l.buckets))
	}
}

func TestOneIPv6SubscriberIsOneClient(t *testing.T) {
	t.Parallel()
	l := newClientLimiter(1, 1, time.Now)
	if ok, _ := l.allow(netip.MustParseAddr("2001:db8:1:2::1")); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := l.allow(netip.MustParseAddr("2001:db8:1:2:ffff::9")); ok {
		t.Error("another address of the same /64 got a fresh bucket")
	}
	if ok, _ := l.allow(netip.MustParseAddr("2001:db8:1:3::1")); !ok {
		t.Error("another /64 was refused")
	}
	if ok, _ := l.allow(netip.MustParseAddr("::ffff:192.0.2.1")); !ok {
		t.Error("an IPv4 client was refused")
	}
	if ok, _ := l.allow(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("an IPv4 address and its IPv6-mapped form got separate buckets")
	}
}

func TestTheClientAddressComesFromATrustedProxyOnly(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "/api/submit-contact", nil)
	req.RemoteAddr = "10.0.0.5:41234"
	req.Header.Set("Fly-Client-IP", "198.51.100.1")
	req.Header.Add("X-Forwarded-For", "203.0.113.66, 198.51.100.9")
	req.Header.Add("X-Forwarded-For", "198.51.100.2")
	for proxy, want := range map[config.ProxyHeader]string{
		config.ProxyNone:          "10.0.0.5",
		config.ProxyFly:           "198.51.100.1",
		config.ProxyXForwardedFor: "198.51.100.2",
	} {
		s := &server{Deps: Deps{Config: config.Config{TrustProxyHeaders: proxy}}}
		if got := s.clientAddress(req).String(); got != want {
			t.Errorf("behind %q: client %s, want %s", proxy, got, want)
		}
	}
	// A trusted header that is missing or garbled falls back to the peer.
	req.Header.Set("Fly-Client-IP", "not an address")
	s := &server{Deps: Deps{Config: config.Config{TrustProxyHeaders: config.ProxyFly}}}
	if got := s.clientAddress(req).String(); got != "10.0.0.5" {
		t.Errorf("garbled Fly-Client-IP: client %s, want the peer", got)
	}
}

func TestAPanicIsA500WithTheRequestID(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s := &server{Deps: Deps{Logger: slog.New(requestIDLogHandler{slog.NewJSONHandler(&logs, nil)})}}
	h := s.withRequestID(s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set(requestIDHeader, "panic-1")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusInternalServerError || !strings.Contains(string(body), `"code":"internal"`) || strings.Contains(string(body), "boom") {
		t.Errorf("answer %d %s", rec.Code, body)
	}
	if !strings.Contains(logs.String(), `"request_id":"panic-1"`) || !strings.Contains(logs.String(), "boom") {
		t.Errorf("log %s lacks the panic or its request id", logs.String())
	}
}

package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/config"
)

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
		s := &server{Deps: Deps{Edge: config.Edge{TrustProxyHeaders: proxy}}}
		if got := s.clientAddress(req).String(); got != want {
			t.Errorf("behind %q: client %s, want %s", proxy, got, want)
		}
	}
	// A trusted header that is missing or garbled falls back to the peer.
	req.Header.Set("Fly-Client-IP", "not an address")
	s := &server{Deps: Deps{Edge: config.Edge{TrustProxyHeaders: config.ProxyFly}}}
	if got := s.clientAddress(req).String(); got != "10.0.0.5" {
		t.Errorf("garbled Fly-Client-IP: client %s, want the peer", got)
	}
}

// Reached directly from the internet, the service ignores the headers the
// client wrote: only a trusted proxy's count.
func TestAClientReachingTheServiceDirectlyCannotChooseItsAddress(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "/api/submit-contact", nil)
	req.RemoteAddr = "203.0.113.50:41234" // a public address: not a proxy of ours
	req.Header.Set("Fly-Client-IP", "198.51.100.1")
	req.Header.Set("X-Forwarded-For", "198.51.100.2")
	for _, proxy := range []config.ProxyHeader{config.ProxyFly, config.ProxyXForwardedFor} {
		s := &server{Deps: Deps{Edge: config.Edge{TrustProxyHeaders: proxy}}}
		if got := s.clientAddress(req).String(); got != "203.0.113.50" {
			t.Errorf("%s, reached directly: client %s, want the TCP peer", proxy, got)
		}
	}
	// The same public peer, named in TRUSTED_PROXIES (a CDN, say), is believed.
	s := &server{Deps: Deps{Edge: config.Edge{TrustProxyHeaders: config.ProxyXForwardedFor,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}}}
	if got := s.clientAddress(req).String(); got != "198.51.100.2" {
		t.Errorf("behind a listed proxy: client %s, want 198.51.100.2", got)
	}
}

func TestXForwardedForSkipsTrustedHopsFromTheRight(t *testing.T) {
	t.Parallel()
	s := &server{Deps: Deps{Edge: config.Edge{TrustProxyHeaders: config.ProxyXForwardedFor}}}
	for xff, want := range map[string]string{
		// CDN -> internal load balancer -> us: the client is the first untrusted from the right.
		"6.6.6.6, 198.51.100.7, 10.1.2.3": "198.51.100.7",
		"198.51.100.7:5555, 10.1.2.3":     "198.51.100.7",
		"[2001:db8::7]:443, 192.168.0.9":  "2001:db8::7",
		"10.9.9.9, 10.1.2.3":              "10.9.9.9", // every hop private: the left-most
		"garbage, 10.1.2.3":               "10.1.2.3",
		"":                                "10.0.0.5",
		"::ffff:198.51.100.8":             "198.51.100.8",
	} {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.RemoteAddr = "10.0.0.5:41234"
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		if got := s.clientAddress(req).String(); got != want {
			t.Errorf("X-Forwarded-For %q: client %s, want %s", xff, got, want)
		}
	}
}

// The flood: more spoofed addresses than the table holds, each one
// spending its bucket. A newcomer still gets in; the table stays bounded.
func TestAFullLimiterMakesRoomForANewcomer(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	l := newClientLimiter(20, 1, clock.now)
	flooder := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, byte(18 + i>>16), byte(i >> 8), byte(i)}) }
	for i := range maxTrackedClients + 1_000 {
		if i%1000 == 0 {
			clock.advance(time.Millisecond) // 15 s of flood, roughly
		}
		l.allow(flooder(i))
	}
	if n := l.tracked(); n != maxTrackedClients {
		t.Fatalf("%d addresses tracked, want the bound %d", n, maxTrackedClients)
	}
	if ok, wait := l.allow(netip.MustParseAddr("203.0.113.9")); !ok {
		t.Fatalf("a new visitor was refused for %s after the flood", wait)
	}
	// The most recent flooders keep their empty buckets; the oldest made room.
	if ok, _ := l.allow(flooder(maxTrackedClients + 999)); ok {
		t.Error("a recent flooder got a fresh bucket")
	}
	if ok, _ := l.allow(flooder(0)); !ok {
		t.Error("the least recently seen address was not the one forgotten")
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
	body := rec.Body.String()
	if rec.Code != http.StatusInternalServerError || !strings.Contains(string(body), `"code":"internal"`) || strings.Contains(string(body), "boom") {
		t.Errorf("answer %d %s", rec.Code, body)
	}
	if !strings.Contains(logs.String(), `"request_id":"panic-1"`) || !strings.Contains(logs.String(), "boom") {
		t.Errorf("log %s lacks the panic or its request id", logs.String())
	}
}

func TestAnErrorAnswerListsAtMostTwentyFieldsInOrder(t *testing.T) {
	t.Parallel()
	fields := map[string]string{"z" + strings.Repeat("k", 5000): "too long a name, sorted last"}
	for i := range 1000 {
		fields[fmt.Sprintf("messages[%d]", i)] = "must be an object"
	}
	e := &Error{Status: 400, Code: "invalid_lead", Message: "the lead has invalid fields", Fields: fields}
	got := boundFields(e)
	if len(got.Fields) != maxAnswerFields || got.Fields["messages[0]"] == "" || got.Fields["messages[19]"] == "" || got.Fields["messages[2]"] == "" {
		t.Errorf("fields %v, want messages[0] to messages[19]", slices.Sorted(maps.Keys(got.Fields)))
	}
	if !strings.Contains(got.Message, "first 20 of 1001") || len(e.Fields) != 1001 {
		t.Errorf("message %q; the original error changed: %d fields", got.Message, len(e.Fields))
	}
	long := boundFields(&Error{Fields: map[string]string{strings.Repeat("k", 5000): "x"}})
	for name := range long.Fields {
		if len(name) > maxFieldName+len("…") {
			t.Errorf("a field name of %d bytes", len(name))
		}
	}
}

// BenchmarkLimiterFlood is the cost of one request during a flood from more
// addresses than the table holds: every request evicts the least recently
// seen address. go test -run '^$' -bench BenchmarkLimiterFlood ./edge/server/
func BenchmarkLimiterFlood(b *testing.B) {
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	l := newClientLimiter(20, 10, clock.now)
	for i := range maxTrackedClients {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	for i := 0; b.Loop(); i++ {
		l.allow(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	b.ReportMetric(float64(l.tracked()), "tracked")
}

// BenchmarkLimiterKnownClient is the cost of one request from an address
// the table holds, among 100,000.
func BenchmarkLimiterKnownClient(b *testing.B) {
	clock := &fakeClock{t: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	l := newClientLimiter(20, 10, clock.now)
	for i := range maxTrackedClients {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	for i := 0; b.Loop(); i++ {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i % maxTrackedClients >> 16), byte(i % maxTrackedClients >> 8), byte(i % maxTrackedClients)}))
	}
}

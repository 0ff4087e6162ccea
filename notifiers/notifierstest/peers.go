// Package notifierstest runs real protocol peers for tests: HTTP servers
// that answer as Slack's incoming webhooks and Telegram's Bot API do, and an
// SMTP server. Each checks requests the way the real service does, accepts
// or refuses them as the test says (errors, 429s, outages, silence), and
// keeps what it accepted. The tests of every package that delivers alerts
// share them.
package notifierstest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Answer is what a peer says to one request that it refuses.
type Answer struct {
	Status     int    // HTTP status, or SMTP reply code
	Body       string // Slack: a short code; Telegram: the description; SMTP: the reply text
	RetryAfter int    // seconds, for a 429
	// Raw sends Body as the whole response instead of in the peer's error
	// format: a proxy's error page in front of the Bot API.
	Raw bool
	// Hang sends nothing: the request waits until the client gives up or
	// the test ends.
	Hang bool
	// Hold keeps the request waiting until Hold is closed, then accepts it
	// (a slow provider); the client giving up or the test ending frees it
	// unanswered.
	Hold <-chan struct{}
}

// Message is one request an HTTP peer accepted; Slack's and Telegram's
// Messages and WaitFor return them.
type Message struct {
	Path     string
	Header   http.Header
	Body     []byte
	Received time.Time
}

// peer is what every peer shares: it accepts or refuses requests as the test
// says, and keeps what it accepted, of type M.
type peer[M any] struct {
	done chan struct{} // closed when the test ends: frees hanging requests

	mu       sync.Mutex
	refuse   []Answer // next answers, in order; then the outage, else success
	outage   *Answer  // every request until Recover
	accepted []M
	requests int
	changed  chan struct{} // closed and replaced whenever a message is accepted
}

func newPeer[M any](t testing.TB) *peer[M] {
	p := &peer[M]{done: make(chan struct{}), changed: make(chan struct{})}
	t.Cleanup(func() { close(p.done) })
	return p
}

func (p *peer[M]) arrived() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	return p.requests
}

// next decides the answer to a valid request: nil means accept.
func (p *peer[M]) next() *Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.refuse) > 0 {
		a := p.refuse[0]
		p.refuse = p.refuse[1:]
		return &a
	}
	return p.outage
}

func (p *peer[M]) accept(m M) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted = append(p.accepted, m)
	close(p.changed)
	p.changed = make(chan struct{})
}

// Refuse makes the next requests get these answers, one each.
func (p *peer[M]) Refuse(answers ...Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = append(p.refuse, answers...)
}

// Down refuses every request with a until Recover.
func (p *peer[M]) Down(a Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage = &a
}

// Recover ends an outage.
func (p *peer[M]) Recover() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage = nil
}

// Messages returns what the peer accepted so far.
func (p *peer[M]) Messages() []M {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]M(nil), p.accepted...)
}

// Requests is how many requests arrived, accepted or not.
func (p *peer[M]) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// WaitFor waits until the peer has accepted at least n messages, failing the
// test after timeout.
func (p *peer[M]) WaitFor(t testing.TB, n int, timeout time.Duration) []M {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		got, changed := len(p.accepted), p.changed
		p.mu.Unlock()
		if got >= n {
			return p.Messages()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("peer accepted %d messages within %s, want %d", got, timeout, n)
		}
	}
}

// protocol is what one HTTP service says, in its own words.
type protocol interface {
	// check refuses a request the service would refuse whatever the test
	// set up: bad credentials, a malformed body.
	check(r *http.Request, body []byte) *Answer
	refuse(w http.ResponseWriter, a Answer)
	ok(w http.ResponseWriter, request int)
}

// httpPeer serves one protocol over HTTP.
type httpPeer struct {
	*peer[Message]
	server *httptest.Server
	conns  atomic.Int64

	busy    atomic.Int64 // requests being served
	maxBusy atomic.Int64
}

func newHTTPPeer(t testing.TB, proto protocol) *httpPeer {
	p := &httpPeer{}
	p.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(proto, w, r) }))
	p.server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.server.Start()
	t.Cleanup(p.server.Close)
	// Registered after Close, so it runs first: Close waits for hanging
	// handlers, which wait for done.
	p.peer = newPeer[Message](t)
	return p
}

// Connections is how many TCP connections clients opened to the peer.
func (p *httpPeer) Connections() int { return int(p.conns.Load()) }

// MaxInFlight is the most requests the peer was serving at once.
func (p *httpPeer) MaxInFlight() int { return int(p.maxBusy.Load()) }

func (p *httpPeer) serve(proto protocol, w http.ResponseWriter, r *http.Request) {
	// Calls that send nothing (Telegram's getMe) are answered apart.
	if u, ok := proto.(interface {
		serveUncounted(http.ResponseWriter, *http.Request) bool
	}); ok && u.serveUncounted(w, r) {
		return
	}
	busy := p.busy.Add(1)
	defer p.busy.Add(-1)
	for m := p.maxBusy.Load(); busy > m && !p.maxBusy.CompareAndSwap(m, busy); m = p.maxBusy.Load() {
	}
	n := p.arrived()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if bad := proto.check(r, body); bad != nil {
		proto.refuse(w, *bad)
		return
	}
	switch a := p.next(); {
	case a == nil:
		p.accept(Message{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Received: time.Now()})
		proto.ok(w, n)
	case a.Hang:
		select {
		case <-r.Context().Done():
		case <-p.done:
		}
	case a.Hold != nil:
		select {
		case <-r.Context().Done():
		case <-p.done:
		case <-a.Hold:
			p.accept(Message{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Received: time.Now()})
			proto.ok(w, n)
		}
	default:
		proto.refuse(w, *a)
	}
}

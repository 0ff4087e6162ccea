// Package notifierstest runs real protocol peers for tests: HTTP servers
// that answer as Slack's incoming webhooks and Telegram's Bot API do,
// including their errors and 429s. Tests of every package that delivers
// alerts share them.
package notifierstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Answer is what a peer says to one request that it refuses.
type Answer struct {
	Status     int
	Body       string // Slack: a short code; Telegram: the description
	RetryAfter int    // seconds, for a 429
}

// Message is one request a peer accepted.
type Message struct {
	Body     []byte
	Received time.Time
}

// peer is the part Slack and Telegram share: it accepts or refuses requests
// as the test says, and keeps what it accepted.
type peer struct {
	server *httptest.Server

	mu       sync.Mutex
	refuse   []Answer // next answers, in order; then the outage, else success
	outage   *Answer  // every request until Recover
	accepted []Message
	requests int
	changed  chan struct{} // closed and replaced whenever a message is accepted
}

func newPeer(t testing.TB, handler func(p *peer, w http.ResponseWriter, r *http.Request)) *peer {
	p := &peer{changed: make(chan struct{})}
	p.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(p, w, r) }))
	t.Cleanup(p.server.Close)
	return p
}

// next decides the answer to a request: nil means accept.
func (p *peer) next() *Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if len(p.refuse) > 0 {
		a := p.refuse[0]
		p.refuse = p.refuse[1:]
		return &a
	}
	return p.outage
}

func (p *peer) accept(body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted = append(p.accepted, Message{Body: body, Received: time.Now()})
	close(p.changed)
	p.changed = make(chan struct{})
}

// Refuse makes the next requests get these answers, one each.
func (p *peer) Refuse(answers ...Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = append(p.refuse, answers...)
}

// Down refuses every request with a until Recover.
func (p *peer) Down(a Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage = &a
}

// Recover ends an outage.
func (p *peer) Recover() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.outage = nil
}

// Messages returns what the peer accepted so far.
func (p *peer) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.accepted...)
}

// Requests is how many requests arrived, accepted or not.
func (p *peer) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// WaitFor waits until the peer has accepted at least n messages, failing the
// test after timeout.
func (p *peer) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
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

// Slack answers as a Slack incoming webhook: 200 "ok", or the refusal the
// test set up (400 invalid_payload, 403 invalid_token, 404 no_service, 410
// channel_is_archived, 429 with Retry-After, 500).
type Slack struct {
	*peer
	URL string // the webhook URL to configure
}

// NewSlack starts a Slack peer, stopped when the test ends.
func NewSlack(t testing.TB) *Slack {
	p := newPeer(t, func(p *peer, w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		var msg struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(body, &msg) != nil || msg.Text == "" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		if a := p.next(); a != nil {
			if a.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(a.RetryAfter))
			}
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(a.Status)
			io.WriteString(w, a.Body)
			return
		}
		p.accept(body)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	})
	return &Slack{peer: p, URL: p.server.URL + "/services/T000/B000/XXXX"}
}

// Telegram answers as the Bot API's sendMessage: {"ok":true,"result":...},
// or {"ok":false,"error_code":...,"description":...} with
// parameters.retry_after on a 429.
type Telegram struct {
	*peer
	BaseURL string // TELEGRAM_API_BASE_URL
	Token   string // the token it accepts
}

// NewTelegram starts a Telegram peer, stopped when the test ends.
func NewTelegram(t testing.TB) *Telegram {
	tg := &Telegram{Token: "123456:TEST-token"}
	tg.peer = newPeer(t, func(p *peer, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path != "/bot"+tg.Token+"/sendMessage" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"ok":false,"error_code":404,"description":"Not Found"}`)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if a := p.next(); a != nil {
			w.WriteHeader(a.Status)
			params := ""
			if a.RetryAfter > 0 {
				params = fmt.Sprintf(`,"parameters":{"retry_after":%d}`, a.RetryAfter)
			}
			fmt.Fprintf(w, `{"ok":false,"error_code":%d,"description":%q%s}`, a.Status, a.Body, params)
			return
		}
		p.accept(body)
		fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d,"date":%d,"chat":{"id":-100123}}}`, p.Requests(), time.Now().Unix())
	})
	tg.BaseURL = tg.peer.server.URL
	return tg
}

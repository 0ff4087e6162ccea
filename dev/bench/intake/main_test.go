package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// The load program runs end to end and prints the ratio; the figures
// themselves are not asserted (they depend on the machine).
func TestTheLoadProgramPrintsTheRatio(t *testing.T) {
	t.Parallel()
	for _, client := range []string{"-net-http-client=false", "-net-http-client=true"} {
		t.Run(client, func(t *testing.T) {
			t.Parallel()
			testTheLoadProgramPrintsTheRatio(t, client)
		})
	}
}

func testTheLoadProgramPrintsTheRatio(t *testing.T, client string) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-duration=300ms", "-warmup=0", "-rounds=1", "-concurrency=2", client, "-database-url", dbtest.NewURL(t)},
		func(string) string { return "" }, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"GOMAXPROCS", "database ceiling", "intake (HTTP POST /api/submit-contact)", "ratio intake/ceiling"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "FAILURES") {
		t.Errorf("requests failed:\n%s", out.String())
	}
}

func TestTheLoadProgramStaysOnThisMachine(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-database-url", "postgres://postgres@db.example.com/postgres"},
		{"-target", "https://leadrelay.fly.dev", "-database-url", "postgres://postgres@127.0.0.1:1/postgres"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}); err == nil ||
			!strings.Contains(err.Error(), "loopback") {
			t.Errorf("%v: err %v, want a refusal naming loopback", args, err)
		}
	}
}

// The load program's HTTP client keeps connections alive, dials again when
// the server closes one, and reports the answer's status and errors.
func TestThePosterReusesAndRedialsConnections(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	conns := map[string]bool{}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		conns[r.RemoteAddr] = true
		n++
		closing := n%3 == 0
		mu.Unlock()
		if r.Header.Get("Idempotency-Key") != "k" || string(body) != `{"a":1}` || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if closing {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"x"}`)
	}))
	defer srv.Close()
	p := newPoster(strings.TrimPrefix(srv.URL, "http://"), 1)
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 9 {
		status, err := p.post(ctx, "/", [][2]string{{"Content-Type", "application/json"}, {"Idempotency-Key", "k"}}, []byte(`{"a":1}`))
		if err != nil || status != http.StatusCreated {
			t.Fatalf("request %d: status %d, err %v", i, status, err)
		}
	}
	if len(conns) != 3 {
		t.Errorf("9 requests, every third answered with Connection: close, came on %d connections, want 3", len(conns))
	}
	srv.Close()
	if _, err := p.post(ctx, "/", nil, nil); err == nil {
		t.Error("a post to a closed server succeeded")
	}
}

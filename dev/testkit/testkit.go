// Package testkit is what every package's tests share: waiting for a
// condition with a deadline (never sleeping for it), a buffer a program may
// write while the test reads, a bounded context, a database connection
// closed with the test, and a link to the database the test can cut. Fresh databases come from package dbtest, protocol
// peers (Slack, Telegram, SMTP) from notifiers/notifierstest.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/database"
)

// poll is how often WaitFor checks its condition.
const poll = 10 * time.Millisecond

// WaitFor checks cond until it holds, failing the test when within has
// passed, or at once when cond returns an error: a failing check must not
// end the wait as a pass.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

// Until is WaitFor for a condition that cannot fail.
func Until(cond func() bool) func() (bool, error) {
	return func() (bool, error) { return cond(), nil }
}

// WaitForQuery waits until query, which returns one boolean, returns true
// (no row counts as false). A query error fails the test.
func WaitForQuery(t testing.TB, db database.Querier, within time.Duration, what, query string, args ...any) {
	t.Helper()
	ctx := Context(t)
	WaitFor(t, within, what, func() (bool, error) {
		var ok bool
		err := db.QueryRow(ctx, query, args...).Scan(&ok)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		return ok, err
	})
}

// Context returns a context that ends with the test, or after two minutes,
// so no call in a test waits forever.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Connect opens a connection to url, closed when the test ends.
func Connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := conn.Close(ctx); err != nil {
			t.Errorf("close connection: %v", err)
		}
	})
	return conn
}

// Buffer is a bytes.Buffer that a program's goroutines may write to while
// the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NewRequest is http.NewRequest for a request without a body.
func NewRequest(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

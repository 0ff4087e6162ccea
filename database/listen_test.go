package database_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/database"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// listener runs a Listener on a fake clock until the test ends, and hands
// what it reports to the test.
type listener struct {
	clock     *clockwork.FakeClock
	listening chan struct{}
	notified  chan string // channel:payload
	lost      chan error
	retryIn   chan time.Duration
	moved     chan struct{}
	done      chan struct{}
}

func startListener(t *testing.T, url string, channels ...string) *listener {
	t.Helper()
	return startListenerWith(t, database.Listener{ConnString: url, Channels: channels})
}

// startListenerWith runs base, backing off from 1 s to 4 s on a fake clock.
func startListenerWith(t *testing.T, base database.Listener) *listener {
	t.Helper()
	l := &listener{
		clock:     clockwork.NewFakeClock(),
		listening: make(chan struct{}, 16),
		notified:  make(chan string, 16),
		lost:      make(chan error, 16),
		retryIn:   make(chan time.Duration, 16),
		moved:     make(chan struct{}, 16),
		done:      make(chan struct{}),
	}
	ctx, stop := context.WithCancel(context.Background())
	go func() {
		defer close(l.done)
		base.MinBackoff, base.MaxBackoff, base.Clock = time.Second, 4*time.Second, l.clock
		base.Listening = func() { l.listening <- struct{}{} }
		base.Notified = func(channel, payload string) { l.notified <- channel + ":" + payload }
		base.Moved = func() {
			select {
			case l.moved <- struct{}{}:
			default: // a test that does not count them
			}
		}
		base.Lost = func(err error, retryIn time.Duration) {
			l.lost <- err
			l.retryIn <- retryIn
		}
		base.Run(ctx)
	}()
	t.Cleanup(func() {
		stop()
		receive(t, l.done, "Run to return once its context ended")
	})
	return l
}

// receive waits for one value from ch, failing the test after 30 s.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("gave up after 30s waiting for %s", what)
		panic("unreachable")
	}
}

// advance moves the clock by d once the listener waits on it.
func (l *listener) advance(t *testing.T, d time.Duration) {
	t.Helper()
	if err := l.clock.BlockUntilContext(testkit.Context(t), 1); err != nil {
		t.Fatalf("the listener never waited on its clock: %v", err)
	}
	l.clock.Advance(d)
}

// A listener hears every channel it listens on; when its connection is cut
// it waits the shortest time (1 s, on its clock) before it tries again, and
// listens again each time: a break after a working connection starts the
// backoff over.
func TestListenerReconnectsWithBackoffAndListensAgain(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	ctx := testkit.Context(t)
	l := startListener(t, url, "lead_events", "leadrelay_console")
	notify := func(channel, payload string) {
		t.Helper()
		if _, err := db.Exec(ctx, "select pg_notify($1, $2)", channel, payload); err != nil {
			t.Fatal(err)
		}
		if got, want := receive(t, l.notified, "a notification"), channel+":"+payload; got != want {
			t.Errorf("heard %q, want %q", got, want)
		}
	}
	cut := func() {
		t.Helper()
		var pids []int32
		err := db.QueryRow(ctx, `select coalesce(array_agg(pid), '{}') from (select pid, pg_terminate_backend(pid) from pg_stat_activity
			where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend') k`).Scan(&pids)
		if err != nil || len(pids) != 1 {
			t.Fatalf("cut the listener's connection: %d terminated, %v", len(pids), err)
		}
		// The terminated backend may linger a moment in pg_stat_activity:
		// the next cut must find only the listener's new connection.
		testkit.WaitForQuery(t, db, 30*time.Second, "the cut connection's backend to end",
			"select not exists (select from pg_stat_activity where pid = $1)", pids[0])
	}

	receive(t, l.listening, "the first LISTEN")
	notify("lead_events", "first")
	notify("leadrelay_console", "second")
	for i, want := range []time.Duration{time.Second, time.Second, time.Second, time.Second} {
		cut()
		if err := receive(t, l.lost, "the loss"); err == nil || !strings.Contains(err.Error(), "wait for notification") {
			t.Errorf("cut %d: lost with %v, want the broken wait", i+1, err)
		}
		if got := receive(t, l.retryIn, "the wait"); got != want {
			t.Errorf("cut %d: retry in %s, want %s", i+1, got, want)
		}
		select {
		case <-l.listening:
			t.Fatalf("cut %d: listening again before the clock moved", i+1)
		default:
		}
		l.advance(t, want)
		receive(t, l.listening, "LISTEN again")
		notify("leadrelay_console", "back")
	}
}

// A server that does not answer is tried again and again, each failure
// reported with the wait before the next: 1 s, 2 s, 4 s, then 4 s (doubling
// up to its bound, on its clock).
func TestListenerRetriesAServerThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	l := startListener(t, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "lead_events")
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if err := receive(t, l.lost, "the failure"); err == nil || !strings.Contains(err.Error(), "connect") {
			t.Errorf("try %d: lost with %v, want a failed connect", i+1, err)
		}
		if got := receive(t, l.retryIn, "the wait"); got != want {
			t.Errorf("try %d: retry in %s, want %s", i+1, got, want)
		}
		l.advance(t, want)
	}
	select {
	case <-l.listening:
		t.Error("listening without a server")
	default:
	}
}

// A quiet connection is pinged after each Idle without a notification and
// kept while it answers; one that goes silent (a partition: nothing
// answered, nothing closed, no error) is found by that ping within its bound
// and replaced, and the listener hears notifications again.
func TestListenerReplacesAConnectionThatWentSilent(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	ctx := testkit.Context(t)
	link := testkit.NewProxy(t, url)
	l := startListenerWith(t, database.Listener{ConnString: link.URL, Channels: []string{"lead_events"}, Idle: time.Minute, ConnectTimeout: 2 * time.Second})
	notify := func(payload string) {
		t.Helper()
		if _, err := db.Exec(ctx, "select pg_notify('lead_events', $1)", payload); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, l.notified, "a notification"); got != "lead_events:"+payload {
			t.Errorf("heard %q", got)
		}
		receive(t, l.moved, "the loop to go round")
	}

	receive(t, l.listening, "the first LISTEN")
	for range 3 { // quiet minutes: pinged, answered, kept
		l.advance(t, time.Minute)
		receive(t, l.moved, "the ping answered")
	}
	notify("still here")

	link.Silence()
	l.advance(t, time.Minute)
	if err := receive(t, l.lost, "the silent connection found"); err == nil || !strings.Contains(err.Error(), "ping after 1m0s without a notification") {
		t.Errorf("lost with %v, want the unanswered ping", err)
	}
	if got := receive(t, l.retryIn, "the wait"); got != time.Second {
		t.Errorf("retry in %s, want 1s", got)
	}
	l.advance(t, time.Second)
	receive(t, l.listening, "LISTEN on a new connection")
	notify("back")
	select {
	case err := <-l.lost:
		t.Errorf("lost again: %v", err)
	default:
	}
}

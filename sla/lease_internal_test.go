package sla

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustExec(t *testing.T, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(testkit.Context(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// testLease is holder's lease of a minute on db, on a clock that stands still: its memory
// never runs out by itself, so only what the database says ends it.
func testLease(db *pgxpool.Pool, holder string) *lease {
	return newLease(db, LeaseName, holder, time.Minute, clockwork.NewFakeClock(), quietLog())
}

// checkFencedOff checks that an SLA pass by engine under l is stopped by
// the fence (errNotLeader) and that no breach event was written.
func checkFencedOff(t *testing.T, db *pgxpool.Pool, engine *Engine, l *lease, what string) {
	t.Helper()
	ctx := testkit.Context(t)
	if _, err := engine.slaPass(ctx, time.Now(), l); !errors.Is(err, errNotLeader) {
		t.Fatalf("%s: %v, want errNotLeader", what, err)
	}
	var events int
	if err := db.QueryRow(ctx, "select count(*) from lead_events where event_type = 'sla.breached'").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Fatalf("%s wrote %d breach events", what, events)
	}
}

// A leader that was paused past its lease still believes it leads (its
// memory has not run out), but the database has given the lease to another:
// the fence stops its job before it writes anything.
func TestAStaleLeaderIsFencedOff(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)
	a := testLease(db, "a")
	b := testLease(db, "b")
	if err := a.try(ctx); err != nil {
		t.Fatal(err)
	}
	tokenA, ok := a.current()
	if !ok {
		t.Fatal("a did not take a free lease")
	}
	// a pauses past its lease: the database lets it go and b takes it.
	mustExec(t, db, "update leader_leases set expires_at = clock_timestamp() - interval '1 second' where name = $1", LeaseName)
	if err := b.try(ctx); err != nil {
		t.Fatal(err)
	}
	tokenB, ok := b.current()
	if !ok || tokenB != tokenA+1 {
		t.Fatalf("b: token %d, held %v; want token %d", tokenB, ok, tokenA+1)
	}
	if _, ok := a.current(); !ok {
		t.Fatal("the test needs a to still believe it leads")
	}

	mustExec(t, db, "insert into conversations (form, email, quality, created_at) values ('contact_form', 'late@example.com', 'hot', now() - interval '1 hour')")
	engine, err := New(db, Config{Replica: "a"}, nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	checkFencedOff(t, db, engine, a, "a's fenced tick")
	if _, ok := a.current(); ok {
		t.Error("a still believes it leads after the fence said otherwise")
	}
	if res, err := engine.slaPass(ctx, time.Now(), b); err != nil || res.Breaches != 1 {
		t.Fatalf("b's fenced tick: %+v, %v; want the breach", res, err)
	}
}

// While a leader's job is in its transaction, a successor cannot take the
// lease, even once it has expired; but it never waits on the job either: it
// hears "not now" at once, and takes the lease at its next try after the job
// has committed. The leader itself renews beside its running job. The lease
// expires by moving it in SQL, not by waiting for it.
func TestAFencedJobHoldsOffTheSuccessor(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)
	a := testLease(db, "a")
	b := testLease(db, "b")
	if err := a.try(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := a.fence(ctx, tx); err != nil {
		t.Fatalf("a's fence: %v", err)
	}

	// a renews while its job runs.
	var renewedBefore, renewedAfter time.Time
	if err := db.QueryRow(ctx, "select renewed_at from leader_leases where name = 'sla'").Scan(&renewedBefore); err != nil {
		t.Fatal(err)
	}
	if err := a.try(ctx); err != nil {
		t.Fatalf("a's renewal beside its job: %v", err)
	}
	if err := db.QueryRow(ctx, "select renewed_at from leader_leases where name = 'sla'").Scan(&renewedAfter); err != nil {
		t.Fatal(err)
	}
	if token, ok := a.current(); !ok || token != 1 || !renewedAfter.After(renewedBefore) {
		t.Fatalf("a's renewal beside its job: held %v, token %d, renewed at %v then %v", ok, token, renewedBefore, renewedAfter)
	}

	// The lease expires (by the database's clock) while a's job runs.
	mustExec(t, db, "update leader_leases set expires_at = clock_timestamp() - interval '1 second' where name = $1", LeaseName)
	// b asks: a blocked ask would run into its deadline and say so.
	if err := b.try(ctx); err != nil {
		t.Fatalf("b's try while a's job runs: %v", err)
	}
	if _, ok := b.current(); ok {
		t.Fatal("b took the lease while a's job was running")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.try(ctx); err != nil {
		t.Fatal(err)
	}
	if token, ok := b.current(); !ok || token != 2 {
		t.Fatalf("after a's job: b holds %v with token %d, want token 2", ok, token)
	}
}

// A leader paused (SIGSTOP) in the middle of a job leaves its transaction
// open, holding the fence. The successor never waits on it: the server ends
// the idle transaction (as serve's SLA pool is set up to, within the lease),
// and the successor takes the lease at a following try. The old leader's
// job, when it wakes, commits nothing, and its next job is fenced off.
func TestAPausedLeaderHoldsOffTheSuccessorOnlyUntilItsTransactionIsEnded(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "300"
	paused, err := pgxpool.NewWithConfig(testkit.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(paused.Close)
	db, err := pgxpool.New(testkit.Context(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	ctx := testkit.Context(t)

	a := testLease(paused, "a")
	b := testLease(db, "b")
	if err := a.try(ctx); err != nil {
		t.Fatal(err)
	}
	tx, err := paused.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := a.fence(ctx, tx); err != nil {
		t.Fatalf("a's fence: %v", err)
	}
	mustExec(t, db, "insert into conversations (form, email, quality, created_at) values ('contact_form', 'late@example.com', 'hot', now() - interval '1 hour')")
	// a is paused here; its lease runs out.
	mustExec(t, db, "update leader_leases set expires_at = clock_timestamp() - interval '1 second' where name = $1", LeaseName)

	tries := 0
	testkit.WaitFor(t, 30*time.Second, "b to take the lease from a paused leader", func() (bool, error) {
		tries++
		if err := b.try(ctx); err != nil {
			return false, fmt.Errorf("b's try %d: %w", tries, err)
		}
		_, ok := b.current()
		return ok, nil
	})
	t.Logf("b took over after %d tries", tries)

	// a wakes up: its job's transaction is gone, and its next job is fenced.
	if _, err := tx.Exec(ctx, "select public.sla_tick(now(), 500)"); err == nil {
		if err := tx.Commit(ctx); err == nil {
			t.Fatal("the paused leader's job committed after its successor took over")
		}
	}
	engine, err := New(paused, Config{Replica: "a"}, nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	checkFencedOff(t, db, engine, a, "a's next job")
}

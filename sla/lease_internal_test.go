package sla

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/dbtest"
	"github.com/truenester/leadrelay/testkit"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func mustExec(t *testing.T, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(testkit.Context(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// A leader that was paused past its lease still believes it leads (its
// memory has not run out), but the database has given the lease to another:
// the fence stops its job before it writes anything.
func TestAStaleLeaderIsFencedOff(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)
	a := newLease(db, LeaseName, "a", time.Minute, quietLog())
	b := newLease(db, LeaseName, "b", time.Minute, quietLog())
	a.try(ctx)
	tokenA, ok := a.current()
	if !ok {
		t.Fatal("a did not take a free lease")
	}
	// a pauses past its lease: the database lets it go and b takes it.
	mustExec(t, db, "update leader_leases set expires_at = clock_timestamp() - interval '1 second' where name = $1", LeaseName)
	b.try(ctx)
	tokenB, ok := b.current()
	if !ok || tokenB != tokenA+1 {
		t.Fatalf("b: token %d, held %v; want token %d", tokenB, ok, tokenA+1)
	}
	if _, ok := a.current(); !ok {
		t.Fatal("the test needs a to still believe it leads")
	}

	mustExec(t, db, "insert into conversations (form, email, quality, created_at) values ('contact_form', 'late@example.com', 'hot', now() - interval '1 hour')")
	engine := New(db, Config{Holder: "a"}, nil, quietLog())
	if _, err := engine.slaPass(ctx, time.Now(), a); !errors.Is(err, errNotLeader) {
		t.Fatalf("a's fenced tick: %v, want errNotLeader", err)
	}
	var events int
	if err := db.QueryRow(ctx, "select count(*) from lead_events where event_type = 'sla.breached'").Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 0 {
		t.Fatalf("a's fenced tick wrote %d events", events)
	}
	if _, ok := a.current(); ok {
		t.Error("a still believes it leads after the fence said otherwise")
	}
	if res, err := engine.slaPass(ctx, time.Now(), b); err != nil || res.Breaches != 1 {
		t.Fatalf("b's fenced tick: %+v, %v; want the breach", res, err)
	}
}

// While a leader's job is in its transaction, a successor cannot take the
// lease, even once it has expired: it waits until the job has committed.
func TestAFencedJobHoldsOffTheSuccessor(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)
	a := newLease(db, LeaseName, "a", 500*time.Millisecond, quietLog())
	b := newLease(db, LeaseName, "b", time.Minute, quietLog())
	a.try(ctx)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := a.fence(ctx, tx); err != nil {
		t.Fatalf("a's fence: %v", err)
	}

	// The lease expires (by the database's clock) while a's job runs.
	testkit.WaitForQuery(t, db, 30*time.Second, "a's lease to expire", "select expires_at <= clock_timestamp() from leader_leases where name = 'sla'")
	done := make(chan struct{})
	go func() {
		b.try(context.Background())
		close(done)
	}()
	testkit.WaitForQuery(t, db, 30*time.Second, "b to wait on a's job", `select exists (select from pg_stat_activity
		where datname = current_database() and wait_event_type = 'Lock' and query like '%leader_lease_acquire%')`)
	if _, ok := b.current(); ok {
		t.Fatal("b took the lease while a's job was running")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	if token, ok := b.current(); !ok || token != 2 {
		t.Fatalf("after a's job: b holds %v with token %d, want token 2", ok, token)
	}
}

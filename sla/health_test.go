package sla_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/ops/health"
	"github.com/truenester/leadrelay/sla"
)

// A leader whose job hangs (its batch waits on a lock that nobody lets go,
// far within its deadline by the wall clock) says nothing of itself: once
// the engine's clock has passed its bound (2 leases) with the batch still
// waiting, the "sla" part is not ready, named with how long it has been
// silent; when the batch goes on, it is ready again.
func TestAHungJobMakesTheEngineStale(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	clock := clockwork.NewFakeClockAt(t0)
	parts := health.New(quiet(), clock)
	engine := newEngine(t, db, sla.Config{Replica: "hung", Lease: time.Minute, Health: parts}, clock, quiet())
	runEngine(t, engine)
	testkit.WaitFor(t, 30*time.Second, "the engine to lead and work", testkit.Until(func() bool {
		return engine.Status().Leader && parts.States()["sla"] == "ok"
	}))

	ctx := testkit.Context(t)
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, "lock table conversations in access exclusive mode"); err != nil {
		t.Fatal(err)
	}
	// The clock moves a tick at a time until a job runs and waits on the lock.
	testkit.WaitFor(t, 30*time.Second, "a job waiting on the lock", func() (bool, error) {
		var waiting bool
		err := db.QueryRow(ctx, `select exists (select from pg_stat_activity
			where datname = current_database() and wait_event_type = 'Lock' and query like '%_tick(%')`).Scan(&waiting)
		if err == nil && !waiting {
			clock.Advance(time.Second)
		}
		return waiting, err
	})
	if got := parts.States()["sla"]; got != "ok" {
		t.Fatalf("a job waiting within its bound: %s", got)
	}

	clock.Advance(2*time.Minute + time.Second)
	// (The state may also say that the leader gave its lease up: the hung job has not run
	// for about as long, its bound 2 × (1s + lease).)
	if got := parts.States()["sla"]; !strings.Contains(got, "no progress for 2m") || !strings.Contains(got, "(bound 2m0s)") {
		t.Errorf("with the job hung past the bound: %s", got)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// The job ends; once both jobs and the campaign wait on the clock again, the clock
	// moves a second: a leader that gave its lease up asks for it again then.
	if err := clock.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	testkit.WaitFor(t, 30*time.Second, "the engine to move again", testkit.Until(func() bool { return parts.States()["sla"] == "ok" }))
}

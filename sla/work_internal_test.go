package sla

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/ops/health"
)

// runFor runs e until the test ends.
func runFor(t *testing.T, e *Engine) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() {
		if err := e.Run(ctx); err != nil {
			t.Errorf("engine %s: %v", e.cfg.Replica, err)
		}
	})
	t.Cleanup(func() { stop(); running.Wait() })
}

// schedulerOf is the gocron scheduler e runs, once it runs.
func schedulerOf(t *testing.T, e *Engine) interface {
	StopJobs() error
	Start()
} {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, "the engine's scheduler", testkit.Until(func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.scheduler != nil
	}))
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scheduler
}

// A leader whose scheduler stops firing its jobs (here stopped, as a scheduler that died
// would be) still reaches the database, so it could renew its lease for ever while no SLA
// tick runs. Once the engine's clock has passed the jobs' bound (2 × (interval + lease))
// without a run, it gives the lease up at its next renewal, /readyz names the SLA engine
// with the job that does not run, and the other replica, whose jobs run, takes over. When
// its jobs run again, the engine is healthy again; it never took the lease back meanwhile.
func TestALeaderWhoseJobsStopRunningGivesUpTheLease(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	clock := clockwork.NewFakeClock()
	parts := health.New(quietLog(), clock)
	// A lease of 3m, renewed every minute of the clock (a follower asks every second): each
	// try's bound by the wall clock is a third of it, out of a loaded machine's reach (the
	// default lease's 1s is not: a first try cut short would leave a to lead only when the
	// clock, which this test moves, reaches the next). The jobs' bound: 2 × (1s + 3m).
	const lease = 3 * time.Minute
	const bound = 2 * (time.Second + lease)
	a, err := New(db, Config{Replica: "a", Lease: lease, Health: parts}, clock, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, a)
	testkit.WaitFor(t, 30*time.Second, "a to lead and work", testkit.Until(func() bool {
		return a.Status().Leader && parts.States()["sla"] == "ok"
	}))
	b, err := New(db, Config{Replica: "b", Lease: lease}, clock, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	runFor(t, b)
	// Each engine, between its runs, waits on the clock three times: its two jobs, each
	// for its next run, and its campaign for its next try of the lease. n waiters mean
	// that every job and campaign still scheduled is idle.
	idle := func(n int) {
		t.Helper()
		if err := clock.BlockUntilContext(testkit.Context(t), n); err != nil {
			t.Fatalf("waiting for the jobs and campaigns to be idle: %v", err)
		}
	}
	idle(6)

	if err := schedulerOf(t, a).StopJobs(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(bound) // the bound itself: a is not stalled yet
	idle(4)              // a renewed; b's jobs ran and b asked
	if err := a.stalled(); err != nil {
		t.Fatalf("at its bound: %v", err)
	}
	clock.Advance(lease / 3) // a's next renewal, past the bound
	const stalled = "sla-tick has not run for 7m2s (bound 6m2s): this replica gives up the leader lease"
	testkit.WaitFor(t, 30*time.Second, "a to give the lease up, saying why", testkit.Until(func() bool {
		return !a.Status().Leader && strings.Contains(parts.States()["sla"], stalled)
	}))
	if err := parts.Check(); err == nil || !strings.Contains(err.Error(), "sla: "+stalled) {
		t.Errorf("/readyz's check with a's jobs stopped: %v", err)
	}
	// b's jobs fire as the clock moves, so b campaigns, and takes the released lease at
	// its next try.
	idle(4)
	clock.Advance(time.Second)
	testkit.WaitFor(t, 30*time.Second, "b to take over", testkit.Until(func() bool { return b.Status().Leader }))
	var holder string
	if err := db.QueryRow(testkit.Context(t), "select holder from leader_leases where name = $1", LeaseName).Scan(&holder); err != nil || holder != "b" {
		t.Fatalf("the lease is %q's (%v), want b's", holder, err)
	}

	schedulerOf(t, a).Start()
	idle(6)
	clock.Advance(time.Second)
	testkit.WaitFor(t, 30*time.Second, "a to work again, as a follower", testkit.Until(func() bool { return parts.States()["sla"] == "ok" }))
	if a.Status().Leader || !b.Status().Leader {
		t.Errorf("after a's jobs came back: a leads %v, b leads %v; want b still", a.Status().Leader, b.Status().Leader)
	}
}

package health_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/ops/health"
)

// A part is not ready until it reports; a failing part fails the whole
// check, and each change of state is logged once however often the part
// reports it.
func TestAPartFailsTheCheckAndIsLoggedOncePerChange(t *testing.T) {
	t.Parallel()
	var logs testkit.Buffer
	r := health.New(slog.New(slog.NewTextHandler(&logs, nil)), nil)
	dispatcher := r.Part("dispatcher")
	sla := r.Part("sla")

	if err := r.Check(); err == nil || !strings.Contains(err.Error(), "dispatcher: starting") || !strings.Contains(err.Error(), "sla: starting") {
		t.Fatalf("before any report: %v, want both parts starting", err)
	}
	dispatcher(nil)
	sla(nil)
	if err := r.Check(); err != nil {
		t.Fatalf("all parts work: %v", err)
	}

	for range 50 {
		sla(errors.New("lease: connection refused"))
	}
	err := r.Check()
	if err == nil || !strings.Contains(err.Error(), "sla: lease: connection refused") || strings.Contains(err.Error(), "dispatcher") {
		t.Fatalf("the SLA engine fails: check says %v", err)
	}
	if got := r.States(); got["dispatcher"] != "ok" || got["sla"] != "lease: connection refused" {
		t.Errorf("states %v", got)
	}
	for range 50 {
		sla(nil)
	}
	if err := r.Check(); err != nil {
		t.Fatalf("the SLA engine recovered: %v", err)
	}
	if warn, info := strings.Count(logs.String(), "level=WARN"), strings.Count(logs.String(), "level=INFO"); warn != 1 || info != 1 {
		t.Errorf("%d warnings and %d infos logged for one failure and one recovery, want 1 and 1:\n%s", warn, info, logs.String())
	}
}

// A watched part that stops moving (its loop blocked, or a step that never
// ends) fails the check once silent for longer than its bound, named with
// how long; while it moves, however slowly within the bound, it is ready.
// Going stale and recovering are each logged once.
func TestAPartThatStopsMovingFailsTheCheck(t *testing.T) {
	t.Parallel()
	r, clock, logs := newRegistry()
	loop := r.Watch("dispatcher", 10*time.Second)
	loop.Report(nil)

	for range 5 { // beats within the bound: ready however long it runs
		clock.Advance(9 * time.Second)
		loop.Beat()
		if err := r.Check(); err != nil {
			t.Fatalf("a part beating every 9s of a 10s bound: %v", err)
		}
	}
	clock.Advance(10*time.Second + time.Millisecond)
	for range 3 {
		err := r.Check()
		if err == nil || !strings.Contains(err.Error(), "dispatcher: no progress for 10.001s (bound 10s)") {
			t.Fatalf("silent for 10.001s of a 10s bound: check says %v", err)
		}
	}
	loop.Beat()
	if err := r.Check(); err != nil {
		t.Fatalf("beating again: %v", err)
	}

	// A step that never ends: the loop beats on, the part is stale.
	end := loop.Begin()
	for range 3 {
		clock.Advance(6 * time.Second)
		loop.Beat()
	}
	if err := r.Check(); err == nil || !strings.Contains(err.Error(), "dispatcher: no progress for 18s (bound 10s)") {
		t.Fatalf("a step begun 18s ago: check says %v", err)
	}
	if got := r.States()["dispatcher"]; got != "no progress for 18s (bound 10s)" {
		t.Errorf("states say %q", got)
	}
	end()
	if err := r.Check(); err != nil {
		t.Fatalf("the step ended: %v", err)
	}
	if stale, again := strings.Count(logs.String(), "health: dispatcher has made no progress"), strings.Count(logs.String(), "health: dispatcher makes progress again"); stale != 2 || again != 2 {
		t.Errorf("logged %d times stale and %d times moving again for two stalls, want 2 and 2:\n%s", stale, again, logs.String())
	}
}

// The registry's own watch finds a stale part with nobody asking /readyz,
// and logs it once.
func TestRunFindsAStalePartUnasked(t *testing.T) {
	t.Parallel()
	r, clock, logs := newRegistry()
	r.Watch("sla", 4*time.Second).Report(nil)
	ctx, cancel := context.WithCancel(testkit.Context(t))
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	for range 4 { // every 2s (half the bound) it looks: 8s of silence
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Second)
	}
	testkit.WaitFor(t, 10*time.Second, "the stale part logged", testkit.Until(func() bool {
		return strings.Contains(logs.String(), "health: sla has made no progress")
	}))
	if n := strings.Count(logs.String(), "health: sla has made no progress"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
}

// A part that is off on purpose is named, with why, and never fails the
// check, however long it stays silent; the parts that run still do.
func TestAPartThatIsOffIsNamedAndPassesTheCheck(t *testing.T) {
	t.Parallel()
	r, clock, _ := newRegistry()
	r.Off("dispatcher", "no notification channel is configured")
	sla := r.Watch("sla", 4*time.Second)
	sla.Report(nil)
	clock.Advance(time.Second)
	if err := r.Check(); err != nil {
		t.Fatalf("with one part off and the other working: %v", err)
	}
	if got := r.States(); got["dispatcher"] != "off: no notification channel is configured" || got["sla"] != "ok" {
		t.Errorf("states %v", got)
	}
	sla.Report(errors.New("lease: connection refused"))
	clock.Advance(time.Hour)
	err := r.Check()
	if err == nil || !strings.Contains(err.Error(), "sla: lease: connection refused") || strings.Contains(err.Error(), "dispatcher") {
		t.Fatalf("the SLA engine fails, the dispatcher is off: check says %v", err)
	}
}

// newRegistry is a Registry on a fake clock, logging to a buffer.
func newRegistry() (*health.Registry, *clockwork.FakeClock, *testkit.Buffer) {
	logs, clock := &testkit.Buffer{}, clockwork.NewFakeClock()
	return health.New(slog.New(slog.NewTextHandler(logs, nil)), clock), clock, logs
}

package health_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/ops/health"
)

// A part is not ready until it reports; a failing part fails the whole
// check, and each change of state is logged once however often the part
// reports it.
func TestAPartFailsTheCheckAndIsLoggedOncePerChange(t *testing.T) {
	t.Parallel()
	var logs testkit.Buffer
	r := health.New(slog.New(slog.NewTextHandler(&logs, nil)))
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

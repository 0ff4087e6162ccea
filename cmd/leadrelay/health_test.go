package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/database"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// A replica started while the database is away stays up: /healthz answers,
// /readyz says 503, and once the database comes it is ready and takes leads.
func TestServeWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	// The database behind a link that is cut: no connection gets through yet.
	link := testkit.NewProxy(t, dbtest.NewURL(t))
	link.Cut()
	r := serveOn(t, freePort(t), map[string]string{"DATABASE_URL": link.URL, "LOG_LEVEL": "debug"})
	waitHealthy(t, r.base+"/healthz", http.StatusOK, r.done)
	if got := status(t, r.base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while the database is away = %d, want 503", got)
	}
	// It keeps trying (a few backoffs), then the database arrives.
	testkit.WaitFor(t, wait, "a few tries", testkit.Until(func() bool { return strings.Count(r.logs.String(), "the database does not answer yet") >= 3 }))
	if got := status(t, r.base+"/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz while the database is away = %d, want 200", got)
	}
	link.Heal()
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)
	postLead(t, r.base, "Patient Lead")
	if n := strings.Count(r.logs.String(), "the database does not answer; waiting"); n != 1 {
		t.Errorf("the wait was logged %d times, want once:\n%s", n, r.logs.String())
	}
}

// A background part that stops working (here the SLA engine, whose lease
// table is gone) fails /readyz, named, while the database still answers;
// the failure is logged once, not once per tick or try, and /readyz recovers
// with the part. The engine's jobs and lease tries run on the process's
// clock, which the test moves a second at a time; its lease (3m) bounds each
// try (a third of it) and each job's batch by the wall clock, so no load
// makes the engine fail of itself meanwhile and log more than the test did.
// A channel is configured, so every part runs (the dispatcher and its
// LISTEN included) and is named ok at the end.
func TestReadyzFailsWhileABackgroundPartDoesNotWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	clock := clockwork.NewFakeClockAt(time.Now())
	slack := notifierstest.NewSlack(t)
	r := serveOnClock(t, freePort(t), map[string]string{"DATABASE_URL": url, "SLACK_WEBHOOK_URL": slack.URL, "SLA_LEADER_LEASE": "3m", "LOG_LEVEL": "debug"}, clock)
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)
	readyz := func() (int, string) {
		t.Helper()
		return get(t, r.base+"/readyz")
	}
	// moving waits for cond, moving the clock a second (a run of the jobs; a try of
	// the lease while the engine does not lead, every minute while it does) each time
	// it does not hold yet.
	moving := func(what string, cond func() bool) {
		t.Helper()
		testkit.WaitFor(t, wait, what, func() (bool, error) {
			select {
			case err := <-r.done:
				return false, fmt.Errorf("serve exited: %v", err)
			default:
			}
			if cond() {
				return true, nil
			}
			clock.Advance(time.Second)
			return false, nil
		})
	}

	before := len(r.logs.String())
	if _, err := db.Exec(ctx, "alter table leader_leases rename to leader_leases_away"); err != nil {
		t.Fatal(err)
	}
	var body string
	moving("/readyz to fail", func() bool {
		var code int
		code, body = readyz()
		return code == http.StatusServiceUnavailable
	})
	if !strings.Contains(body, "sla:") || !strings.Contains(body, "not_ready") {
		t.Errorf("/readyz says %s, want not_ready naming the SLA engine", body)
	}
	// Several lease tries fail before the repair.
	moving("several failed lease tries", func() bool {
		return strings.Count(r.logs.String()[before:], "could not take or renew the leader lease") >= 4
	})
	if _, err := db.Exec(ctx, "alter table leader_leases_away rename to leader_leases"); err != nil {
		t.Fatal(err)
	}
	moving("/readyz to recover", func() bool {
		var code int
		code, body = readyz()
		return code == http.StatusOK
	})
	var resp struct {
		Parts map[string]string `json:"parts"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Parts["sla"] != "ok" || resp.Parts["dispatcher"] != "ok" || resp.Parts["listen"] != "ok" || resp.Parts["console_live"] != "ok" || resp.Parts["database"] != "ok" {
		t.Errorf("/readyz after recovery: %s", body)
	}
	logs := r.logs.String()[before:]
	if n := strings.Count(logs, "health: sla is not working"); n != 1 {
		t.Errorf("the SLA engine's failure was logged %d times, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs, "health: sla works again"); n != 1 {
		t.Errorf("the SLA engine's recovery was logged %d times, want once", n)
	}
}

// Every session of serve's pools runs under a statement, lock and
// idle-transaction timeout; the SLA pool's are within its lease; a setting
// the URL names itself wins.
func TestPoolsBoundEverySession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	db := config.DefaultDBSettings
	pools, err := openPools(url, db, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pools.close()
	show := func(t *testing.T, pool database.Querier) string {
		t.Helper()
		var app, stmt, lock, idle string
		err := pool.QueryRow(ctx, `select current_setting('application_name'), current_setting('statement_timeout'),
			current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')`).Scan(&app, &stmt, &lock, &idle)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join([]string{app, stmt, lock, idle}, " ")
	}
	for pool, want := range map[string]string{
		show(t, pools.intake):   "leadrelay intake 10s 2s 10s",
		show(t, pools.dispatch): "leadrelay dispatch 10s 2s 10s",
		show(t, pools.sla):      "leadrelay sla 3s 1s 3s",
		show(t, pools.admin):    "leadrelay admin 10s 2s 10s",
		show(t, pools.metrics):  "leadrelay metrics 10s 2s 10s",
	} {
		if pool != want {
			t.Errorf("session settings %q, want %q", pool, want)
		}
	}
	for name, got := range map[string][2]int32{
		"intake":  {pools.intake.Config().MaxConns, db.IntakeConns},
		"admin":   {pools.admin.Config().MaxConns, db.AdminConns},
		"metrics": {pools.metrics.Config().MaxConns, db.MetricsConns},
	} {
		if got[0] != got[1] {
			t.Errorf("%s pool of %d connections, want %d", name, got[0], got[1])
		}
	}

	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	own, err := openPools(url+sep+"lock_timeout=5s", db, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer own.close()
	if got := show(t, own.intake); got != "leadrelay intake 10s 5s 10s" {
		t.Errorf("with lock_timeout in the URL: %q", got)
	}
}

// A part that hangs says nothing of itself: here the dispatcher's send to a
// Slack that never answers, far within its NOTIFY_SEND_TIMEOUT by the wall
// clock. Once the process's clock has moved past the dispatcher's bound
// (NOTIFY_LEASE + 2 NOTIFY_SEND_TIMEOUT, 5m here) with the send still in
// flight, /readyz says 503, naming the dispatcher and how long it has been
// silent; when the send ends it is ready again. Each change is logged once.
func TestReadyzFailsWhileAPartHangs(t *testing.T) {
	t.Parallel()
	slack := notifierstest.NewSlack(t)
	hold := make(chan struct{})
	slack.Refuse(notifierstest.Answer{Hold: hold})
	// A minute ahead of the database's clock (the events it stamps are due), in
	// microseconds as the database keeps times.
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Minute).Truncate(time.Microsecond))
	url := dbtest.NewURL(t)
	r := serveOnClock(t, freePort(t), map[string]string{
		"DATABASE_URL": url, "SLACK_WEBHOOK_URL": slack.URL,
		"NOTIFY_LEASE": "3m", "NOTIFY_SEND_TIMEOUT": "1m",
		// The other parts' bounds lie beyond the jump: SLA 2 x its lease; no LISTEN (80s).
		"SLA_LEADER_LEASE": "10m", "ENABLE_LISTEN": "false",
	}, clock)
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before serve stops: its shutdown waits for the send
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)

	postLead(t, r.base, "Held Lead")
	testkit.WaitFor(t, wait, "the send to reach Slack", testkit.Until(func() bool { return slack.Requests() >= 1 }))
	if got := status(t, r.base+"/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz with a send in flight within its bound = %d, want 200", got)
	}
	clock.Advance(5*time.Minute + time.Second)
	waitAnswer(t, r.base+"/readyz", http.StatusServiceUnavailable, r.done)
	// The loop goes round meanwhile: its heartbeat, on the moved clock, renews
	// the held send's lease (NOTIFY_LEASE from the clock's time). The held
	// send alone keeps the dispatcher stale.
	testkit.WaitForQuery(t, testkit.Connect(t, url), wait, "the heartbeat to renew the held send's lease",
		"select exists (select from notification_logs where channel = 'slack' and lease_expires_at = $1)", clock.Now().Add(3*time.Minute))
	body := waitAnswer(t, r.base+"/readyz", http.StatusServiceUnavailable, r.done)
	if !strings.Contains(body, "dispatcher: no progress for 5m1s (bound 5m0s)") {
		t.Errorf("/readyz says %s, want the dispatcher named with its silence and bound", body)
	}
	release()
	waitAnswer(t, r.base+"/readyz", http.StatusOK, r.done)
	if n := strings.Count(r.logs.String(), "health: dispatcher has made no progress"); n != 1 {
		t.Errorf("the stall was logged %d times, want once", n)
	}
	if n := strings.Count(r.logs.String(), "health: dispatcher makes progress again"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once", n)
	}
}

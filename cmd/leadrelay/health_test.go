package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// A replica started while the database is away stays up: /healthz answers,
// /readyz says 503, and once the database comes it is ready and takes leads.
func TestServeWaitsForTheDatabase(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t)
	u, err := neturl.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	// The database's address, where nothing listens yet.
	target := u.Host
	dbPort := freePort(t)
	u.Host = fmt.Sprintf("127.0.0.1:%d", dbPort)
	r := serveLogged(t, map[string]string{"DATABASE_URL": u.String(), "LOG_LEVEL": "debug"})
	waitHealthy(t, r.base+"/healthz", http.StatusOK, r.done)
	if got := status(t, r.base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while the database is away = %d, want 503", got)
	}
	// It keeps trying (a few backoffs), then the database arrives.
	testkit.WaitFor(t, wait, "a few tries", testkit.Until(func() bool { return strings.Count(r.logs.String(), "the database does not answer yet") >= 3 }))
	if got := status(t, r.base+"/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz while the database is away = %d, want 200", got)
	}
	forward(t, dbPort, target)
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)
	postLead(t, r.base, "Patient Lead")
	if n := strings.Count(r.logs.String(), "the database does not answer; waiting"); n != 1 {
		t.Errorf("the wait was logged %d times, want once:\n%s", n, r.logs.String())
	}
}

// A background part that stops working (here the SLA engine, whose lease
// table is gone) fails /readyz, named, while the database still answers;
// the failure is logged once, not once per tick, and /readyz recovers with
// the part.
func TestReadyzFailsWhileABackgroundPartDoesNotWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	r := serveLogged(t, map[string]string{"DATABASE_URL": url, "SLA_LEADER_LEASE": "600ms", "SLA_TICK_INTERVAL": "50ms", "LOG_LEVEL": "debug"})
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)

	// Count from here: on a loaded machine the first lease try may time out
	// and be logged (and its recovery) before the part is broken on purpose.
	before := len(r.logs.String())
	if _, err := db.Exec(ctx, "alter table leader_leases rename to leader_leases_away"); err != nil {
		t.Fatal(err)
	}
	body := waitAnswer(t, r.base+"/readyz", http.StatusServiceUnavailable, r.done)
	if !strings.Contains(body, "sla:") || !strings.Contains(body, "not_ready") {
		t.Errorf("/readyz says %s, want not_ready naming the SLA engine", body)
	}
	// Let several lease tries fail (one every 200ms) before the repair.
	testkit.WaitFor(t, wait, "several failed lease tries", testkit.Until(func() bool { return strings.Count(r.logs.String(), "could not take or renew the leader lease") >= 4 }))
	if _, err := db.Exec(ctx, "alter table leader_leases_away rename to leader_leases"); err != nil {
		t.Fatal(err)
	}
	body = waitAnswer(t, r.base+"/readyz", http.StatusOK, r.done)
	var resp struct {
		Parts map[string]string `json:"parts"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.Parts["sla"] != "ok" || resp.Parts["dispatcher"] != "ok" || resp.Parts["listen"] != "ok" || resp.Parts["database"] != "ok" {
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

type served struct {
	base string
	logs *testkit.Buffer
	done chan error
}

// serveLogged runs `leadrelay serve` in-process on a free port, without
// waiting for it, and keeps its log; it stops when the test ends.
func serveLogged(t *testing.T, vars map[string]string) served {
	t.Helper()
	port := freePort(t)
	vars["PORT"] = strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	r := served{base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &testkit.Buffer{}, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, []string{"leadrelay", "serve"}, env(vars), &testkit.Buffer{}, r.logs) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", r.logs.String())
		}
	})
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	return r
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
	show := func(t *testing.T, pool interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}) string {
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
	} {
		if pool != want {
			t.Errorf("session settings %q, want %q", pool, want)
		}
	}
	if got := pools.intake.Config().MaxConns; got != db.IntakeConns {
		t.Errorf("intake pool of %d connections, want %d", got, db.IntakeConns)
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

// forward listens on port and forwards every connection to target, until
// the test ends.
func forward(t *testing.T, port int, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

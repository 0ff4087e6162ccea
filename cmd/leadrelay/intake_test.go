package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// A lead posted just before the service is told to stop is still saved
// and answered: shutdown stops taking new connections, waits for requests
// in flight, and only then closes the database pool.
func TestShutdownFinishesAnIntakeInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	// The request waits on the test's lock while serve stops, which a loaded
	// machine can make longer than DB_LOCK_TIMEOUT's 2s; that bound is not what
	// this test is about.
	base, stop := startServeEnv(t, map[string]string{"DATABASE_URL": url, "DB_LOCK_TIMEOUT": "1m"})

	db := testkit.Connect(t, url)
	// Hold the lead table so the request stays in flight, inside
	// submit_lead, for as long as the test needs.
	locker := testkit.Connect(t, url)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "lock table conversations in exclusive mode"); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := http.Post(base+"/api/submit-contact", "application/json",
			strings.NewReader(`{"name": "Late Lead", "email": "late@example.com", "message": "still there?"}`))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		answered <- answer{status: res.StatusCode, body: string(body), err: err}
	}()
	testkit.WaitForQuery(t, db, wait, "submit_lead to wait for the lock", `select exists (select from pg_stat_activity
		where datname = current_database() and query like '%submit_lead%' and wait_event_type = 'Lock' and pid <> pg_backend_pid())`)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	addr := strings.TrimPrefix(base, "http://")
	testkit.WaitFor(t, wait, "the listener to close", testkit.Until(func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	}))
	select {
	case a := <-answered:
		t.Fatalf("the request was answered while the lead could not be saved: %+v", a)
	case err := <-stopped:
		t.Fatalf("serve stopped with a request in flight: %v", err)
	default:
	}

	if err := tx.Rollback(ctx); err != nil { // let submit_lead go on
		t.Fatal(err)
	}
	a := <-answered
	if a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("in-flight request: status %d, body %s, err %v; want 201", a.status, a.body, a.err)
	}
	var got struct{ ID string }
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	var email string
	if err := db.QueryRow(ctx, "select email from conversations where id = $1", got.ID).Scan(&email); err != nil || email != "late@example.com" {
		t.Fatalf("lead %s: %q, %v", got.ID, email, err)
	}
}

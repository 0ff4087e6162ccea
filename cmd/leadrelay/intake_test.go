package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/config"
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
	// machine can make longer than DB_LOCK_TIMEOUT's 2s and the intake's
	// deadline, DB_INTAKE_TIMEOUT's 5s; those bounds are not what this test
	// is about.
	base, stop := startServeEnv(t, map[string]string{"DATABASE_URL": url, "DB_LOCK_TIMEOUT": "1m", "DB_INTAKE_TIMEOUT": "1m"})

	db := testkit.Connect(t, url)
	tx := holdLeadTable(t, ctx, url)
	answered := postInBackground(base, "Late Lead")
	waitForSubmitLeadOnTheLock(t, db, 0, answered)

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
	id := (<-answered).lead(t)
	if err := <-stopped; err != nil {
		t.Fatalf("serve returned %v", err)
	}
	var email string
	if err := db.QueryRow(ctx, "select email from conversations where id = $1", id).Scan(&email); err != nil || email != "late.lead@example.com" {
		t.Fatalf("lead %s: %q, %v", id, email, err)
	}
}

// serve gives the intake the deadline DB_INTAKE_TIMEOUT says: set longer
// than the intake's own, a lead that waits on a lock for longer than that
// default (by the database's clock) is still saved and answered 201, where
// the default would have answered 503.
func TestServeGivesTheIntakeDBIntakeTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	// The lock wait ends when the test lets go, not at a session bound.
	base, _ := startServeEnv(t, map[string]string{"DATABASE_URL": url, "DB_INTAKE_TIMEOUT": "1m", "DB_LOCK_TIMEOUT": "1m", "DB_STATEMENT_TIMEOUT": "1m"})

	db := testkit.Connect(t, url)
	tx := holdLeadTable(t, ctx, url)
	answered := postInBackground(base, "Patient Lead")
	waitForSubmitLeadOnTheLock(t, db, config.DefaultDBSettings.IntakeTimeout+time.Second, answered)

	if err := tx.Rollback(ctx); err != nil { // let submit_lead go on
		t.Fatal(err)
	}
	(<-answered).lead(t)
}

// holdLeadTable locks the lead table in a transaction of a connection of its
// own, so a submit_lead stays in flight, waiting on the lock, until the test
// rolls it back (or ends).
func holdLeadTable(t *testing.T, ctx context.Context, url string) pgx.Tx {
	t.Helper()
	tx, err := testkit.Connect(t, url).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	if _, err := tx.Exec(ctx, "lock table conversations in exclusive mode"); err != nil {
		t.Fatal(err)
	}
	return tx
}

// postInBackground posts contactForm(name) and returns where its answer
// comes.
func postInBackground(base, name string) <-chan intakeAnswer {
	answered := make(chan intakeAnswer, 1)
	go func() { answered <- postContact(base, name) }()
	return answered
}

// waitForSubmitLeadOnTheLock waits until a submit_lead has waited on a lock
// for longer than waited, by the database's clock; it fails the test if the
// intake answers first.
func waitForSubmitLeadOnTheLock(t *testing.T, db *pgx.Conn, waited time.Duration, answered <-chan intakeAnswer) {
	t.Helper()
	ctx := testkit.Context(t)
	testkit.WaitFor(t, wait, fmt.Sprintf("submit_lead to wait on the lock for longer than %s", waited), func() (bool, error) {
		select {
		case a := <-answered:
			return false, fmt.Errorf("the intake answered while submit_lead should wait on the lock: status %d, body %s, err %v", a.status, a.body, a.err)
		default:
		}
		var ok bool
		err := db.QueryRow(ctx, `select exists (select from pg_stat_activity
			where datname = current_database() and query like '%submit_lead%' and wait_event_type = 'Lock' and pid <> pg_backend_pid()
			  and clock_timestamp() - query_start > $1)`, waited).Scan(&ok)
		return ok, err
	})
}

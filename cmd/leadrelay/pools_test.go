package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// Admins and scrapers have pools of their own: with every connection of the
// admin pool (DB_POOL_ADMIN) and of the metrics pool (DB_POOL_METRICS) held
// by requests that wait on a lock, the intake still answers 201 and
// /readyz 200; the held requests finish once the lock goes.
func TestAdminsAndScrapersCannotStarveTheIntake(t *testing.T) {
	t.Parallel()
	const adminKey, metricsToken = "test-admin-key-0123456789", "test-metrics-token-0123456789"
	url := dbtest.NewURL(t)
	ctx := testkit.Context(t)
	db, watch := testkit.Connect(t, url), testkit.Connect(t, url)
	r := serveOn(t, freePort(t), map[string]string{
		"DATABASE_URL": url, "ADMIN_API_KEY": adminKey, "METRICS_TOKEN": metricsToken,
		// More requests wait than the intake has connections.
		"DB_POOL_INTAKE": "2", "DB_POOL_ADMIN": "2", "DB_POOL_METRICS": "1",
		// The held requests wait on their lock until the test lets go.
		"DB_LOCK_TIMEOUT": "1m", "DB_ADMIN_TIMEOUT": "1m",
		// /readyz is asked once, and the SLA engine's part counts in it: the engine's lease
		// tries, each bounded by a third of its lease (1s by default), within a bound no
		// load reaches.
		"SLA_LEADER_LEASE": "10m",
	})
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)
	lead := postLead(t, r.base, "Contested Lead")

	// The test holds the lead's row, which marking it contacted updates,
	// and the SLA counters, which the metrics' figures read.
	tx := holdLead(t, ctx, db, lead)
	if _, err := tx.Exec(ctx, "lock table leadrelay_private.metric_counters in access exclusive mode"); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, token string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, method, r.base+path, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	var held sync.WaitGroup
	answers := make(chan string, 100)
	for range 6 { // three times the admin pool, the intake's size twice over
		held.Go(func() {
			code, err := call(http.MethodPost, "/admin/api/leads/"+lead+"/contacted", adminKey)
			answers <- fmt.Sprintf("contacted %d %v", code, err)
		})
	}
	// The metrics' query gives up after 2 s: a scraper asks again and again.
	released := make(chan struct{})
	held.Go(func() {
		for {
			code, err := call(http.MethodGet, "/metrics", metricsToken)
			select {
			case answers <- fmt.Sprintf("metrics %d %v", code, err):
			default:
			}
			select {
			case <-released:
				return
			default:
			}
		}
	})
	defer held.Wait()
	release := sync.OnceFunc(func() { close(released) })
	defer release()
	testkit.WaitForQuery(t, watch, wait, "every admin and metrics connection waiting on the test's locks",
		`select count(*) filter (where application_name = 'leadrelay admin') = 2
		    and count(*) filter (where application_name = 'leadrelay metrics') = 1
		   from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)

	for i := range 5 {
		postLead(t, r.base, fmt.Sprintf("Unstarved Lead %d", i)) // fails the test unless 201
	}
	if got := status(t, r.base+"/readyz"); got != http.StatusOK {
		t.Errorf("/readyz with the admin and metrics pools held = %d, want 200", got)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	release()
	held.Wait()
	close(answers)
	var got []string
	for a := range answers {
		got = append(got, a)
	}
	if want := "contacted 200 <nil>"; strings.Count(strings.Join(got, "\n"), want) != 6 || !strings.Contains(strings.Join(got, "\n"), "metrics 200 <nil>") {
		t.Errorf("the held requests answered %q, want six %q and metrics 200", got, want)
	}
}

// An admin request never waits for ever: with the only admin connection
// (DB_POOL_ADMIN=1) waiting on a lock the test holds, and more requests
// queued for it, each answers 503 with Retry-After once DB_ADMIN_TIMEOUT
// has passed, whether it was waiting for the connection or on the lock;
// once the lock goes, the same request answers 200.
func TestAdminRequestsGiveUpAfterDBAdminTimeout(t *testing.T) {
	t.Parallel()
	const adminKey = "test-admin-key-0123456789"
	url := dbtest.NewURL(t)
	ctx := testkit.Context(t)
	db := testkit.Connect(t, url)
	r := serveOn(t, freePort(t), map[string]string{
		"DATABASE_URL": url, "ADMIN_API_KEY": adminKey,
		"DB_POOL_ADMIN": "1", "DB_ADMIN_TIMEOUT": "500ms",
		// Without the admin deadline the requests would wait a minute for the lock.
		"DB_LOCK_TIMEOUT": "1m",
	})
	waitHealthy(t, r.base+"/readyz", http.StatusOK, r.done)
	lead := postLead(t, r.base, "Locked Lead")

	tx := holdLead(t, ctx, db, lead)
	contacted := func() (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/admin/api/leads/"+lead+"/contacted", nil)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		req.Header.Set("Authorization", "Bearer "+adminKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After")
	}
	var asked sync.WaitGroup
	answers := make(chan string, 3)
	for range 3 {
		asked.Go(func() {
			code, retryAfter := contacted()
			answers <- fmt.Sprintf("%d Retry-After %s", code, retryAfter)
		})
	}
	asked.Wait()
	close(answers)
	for a := range answers {
		if a != "503 Retry-After 2" {
			t.Errorf("an admin request with the admin pool held answered %s, want 503 Retry-After 2", a)
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Retried as Retry-After says (a first call may take longer than 500ms on a loaded machine).
	testkit.WaitFor(t, wait, "the request to answer 200 with the lock gone", testkit.Until(func() bool { code, _ := contacted(); return code == http.StatusOK }))
}

// holdLead locks the lead's row in a transaction of db's, rolled back when
// the test ends unless the test ends it first.
func holdLead(t *testing.T, ctx context.Context, db *pgx.Conn, lead string) pgx.Tx {
	t.Helper()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(ctx)) })
	if _, err := tx.Exec(ctx, "select 1 from conversations where id = $1 for update", lead); err != nil {
		t.Fatal(err)
	}
	return tx
}

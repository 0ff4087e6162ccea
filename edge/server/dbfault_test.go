package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/database/dberr"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// A sequence at its maximum (the setval attack, now closed to the API
// roles, or plain exhaustion) is the database's fault: the website gets a 503
// to retry, not a 400 that blames the visitor, and nothing is half-written.
func TestASequenceAtItsMaximumIsA503(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if _, err := b.db.Exec(context.Background(), "select setval('public.chat_messages_seq_seq', 9223372036854775807)"); err != nil {
		t.Fatal(err)
	}
	a := b.post(t, "/api/chatbot/leads", `{"email": "seq@example.com", "messages": [{"role": "user", "content": "hi"}]}`, "Idempotency-Key", "seq-1")
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	assertRetryAfter(t, a)
	if n := b.count(t, "select count(*) from conversations"); n != 0 {
		t.Errorf("%d leads stored, want none", n)
	}
}

// Message times at infinity or in 4714 BC are refused, naming the field.
func TestMessageTimesOutOfRangeAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	e := b.post(t, "/api/chatbot/leads", `{"email": "at@example.com", "messages": [
		{"role": "user", "content": "a", "at": "infinity"},
		{"role": "user", "content": "b", "at": "4714-11-24T00:00:00Z BC"},
		{"role": "user", "content": "c", "at": "2026-11-24T10:00:00Z"}]}`).error(t, http.StatusBadRequest, "invalid_lead")
	for _, field := range []string{"messages[0].at", "messages[1].at"} {
		if e.Error.Fields[field] == "" {
			t.Errorf("fields %v do not name %s", e.Error.Fields, field)
		}
	}
	if _, ok := e.Error.Fields["messages[2].at"]; ok {
		t.Errorf("a time in range was refused: %v", e.Error.Fields)
	}
}

// A submission that waits on a row lock past its lock timeout (DB_LOCK_TIMEOUT; here a
// claim of its Idempotency-Key, locked by the test as a stuck call would hold it) gets a
// 503 with Retry-After, not a 500: nothing was committed, so the retry with the same key
// that the answer asks for, once the lock is gone, gets the one lead.
//
// Only the refused submission runs under the test's 100ms: the first and the retry go
// through a server on the same database with the server's lock_timeout. A commit that
// NOTIFYs (a new lead does) waits for PostgreSQL's one NOTIFY queue lock, shared by every
// database of the server, and that wait counts against lock_timeout, which a loaded
// machine takes past 100ms with no row locked by anyone.
func TestALockTimeoutIsA503AndARetryGetsOneLead(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	url := dbtest.NewURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "100ms"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := setupWithPool(t, pool, nil)
	plain, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plain.Close)
	other := setupWithPool(t, plain, nil)
	body := `{"email": "locked@example.com", "message": "hello"}`
	first := other.post(t, "/api/submit-contact", body, "Idempotency-Key", "locked-1").lead(t, http.StatusCreated)

	holder := testkit.Connect(t, cfg.ConnString())
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var locked int
	if err := tx.QueryRow(ctx, `select count(*) from (select 1 from leadrelay_private.intake_claims
		where claim like 'key:%:locked-1' for update) c`).Scan(&locked); err != nil || locked != 1 {
		t.Fatalf("lock the key's claim: %d rows, %v", locked, err)
	}
	a := b.post(t, "/api/submit-contact", body, "Idempotency-Key", "locked-1")
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	// The same Retry-After as the console's and the JSON admin API's 503s.
	if s := assertRetryAfter(t, a); s != int(dberr.RetryAfter/time.Second) {
		t.Errorf("Retry-After %d, want dberr.RetryAfter (%s)", s, dberr.RetryAfter)
	}
	if !strings.Contains(string(a.body), "retry with the same Idempotency-Key") {
		t.Errorf("the 503 does not ask for a retry with the same key: %s", a.body)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if again := other.post(t, "/api/submit-contact", body, "Idempotency-Key", "locked-1").lead(t, http.StatusOK); again.ID != first.ID {
		t.Errorf("the retry got lead %s, want %s", again.ID, first.ID)
	}
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads, want 1", n)
	}
}

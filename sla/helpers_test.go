package sla_test

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/sla"
)

// t0 is when the tests' leads arrive; the fake clock starts there.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func quiet() *slog.Logger {
	if os.Getenv("SLA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type bundle struct {
	db     *pgxpool.Pool
	clock  *clockwork.FakeClock
	engine *sla.Engine
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{db: dbtest.New(t), clock: clockwork.NewFakeClockAt(t0)}
	// Tick's batches run under the lease as their deadline (by the wall clock): a minute,
	// not the default 3s, since no test here is about that deadline.
	b.engine = newEngine(t, b.db, sla.Config{Replica: "test", Lease: time.Minute}, b.clock, quiet())
	return b
}

// exec runs statements that must succeed.
func exec(t testing.TB, db *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(testkit.Context(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// lead saves a lead of a stated quality that arrived at t0 and returns its id.
func (b *bundle) lead(t *testing.T, quality string) string {
	t.Helper()
	return b.leadAt(t, quality, t0)
}

func (b *bundle) leadAt(t *testing.T, quality string, at time.Time) string {
	t.Helper()
	var id string
	err := b.db.QueryRow(testkit.Context(t), `insert into conversations (form, email, quality, created_at, updated_at)
		values ('chatbot', 'lead@example.com', $1, $2, $2) returning id`, quality, at).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// at moves the clock to t0+d (forward only) and ticks.
func (b *bundle) at(t *testing.T, d time.Duration) sla.Result {
	t.Helper()
	if target := t0.Add(d); target.After(b.clock.Now()) {
		b.clock.Advance(target.Sub(b.clock.Now()))
	}
	res, err := b.engine.Tick(testkit.Context(t))
	if err != nil {
		t.Fatalf("tick at t0+%s: %v", d, err)
	}
	return res
}

// events lists a lead's SLA and follow-up events, oldest first, by type.
func (b *bundle) events(t *testing.T, leadID string) []string {
	t.Helper()
	rows, _ := b.db.Query(testkit.Context(t), `select e.event_type::text from lead_events e
		where e.conversation_id = $1 and split_part(e.event_type::text, '.', 1) in ('sla', 'followup')
		order by e.created_at, e.event_type`, leadID)
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return types
}

type entry struct {
	Title string
	At    time.Time
}

// timeline lists a lead's SLA and follow-up timeline entries in order.
func (b *bundle) timeline(t *testing.T, leadID string) []entry {
	t.Helper()
	rows, _ := b.db.Query(testkit.Context(t), `select title, created_at from conversation_timeline
		where conversation_id = $1 and event_type in ('sla_warning', 'sla_breached', 'followup_due', 'followup_overdue')
		order by created_at, title`, leadID)
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (entry, error) {
		var e entry
		err := r.Scan(&e.Title, &e.At)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

type flags struct {
	WarningSentAt *time.Time
	Breached      bool
	BreachedAt    *time.Time
}

func (b *bundle) flags(t *testing.T, leadID string) flags {
	t.Helper()
	var f flags
	err := b.db.QueryRow(testkit.Context(t), "select sla_warning_sent_at, sla_breached, sla_breached_at from conversations where id = $1", leadID).
		Scan(&f.WarningSentAt, &f.Breached, &f.BreachedAt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func timeIs(got *time.Time, want time.Time) bool { return got != nil && got.Equal(want) }

// newEngine is sla.New for a test: a refused Config fails it.
func newEngine(t testing.TB, db *pgxpool.Pool, cfg sla.Config, clock clockwork.Clock, log *slog.Logger) *sla.Engine {
	t.Helper()
	e, err := sla.New(db, cfg, clock, log)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

package sla_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/sla"
)

// benchNow is the benchmark's "now": a few hundred rows come due at it.
var benchNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// BenchmarkSLA loads 1,000,000 conversations and 200,000 follow-up tasks of
// which a few hundred are due at benchNow, prints the plans of one SLA tick
// and one follow-up tick (EXPLAIN ANALYZE, BUFFERS, of the statements inside
// the functions, through auto_explain), checks that they read the due rows
// through the partial indexes, and times the ticks and the admin reads.
//
//	go run ./dev/tools/withpostgres -- go test -run '^$' -bench BenchmarkSLA -benchtime 20x -timeout 30m ./sla/
func BenchmarkSLA(b *testing.B) {
	url := dbtest.NewURL(b)
	db := pool(b, url, 4)
	start := time.Now()
	loadMillion(b, db)
	b.Logf("loaded 1,000,000 conversations and 200,000 follow-up tasks in %s", time.Since(start).Round(time.Millisecond))

	plans := explainTick(b, url, "select * from public.sla_tick($1, 500)")
	requirePlan(b, plans, "conversations_sla_breach_due_idx", "conversations_sla_warning_due_idx")
	plans = explainTick(b, url, "select * from public.follow_up_tick($1, 500)")
	requirePlan(b, plans, "follow_up_tasks_overdue_idx", "follow_up_tasks_due_idx")

	// Each iteration ticks in a transaction and rolls it back, so every
	// iteration finds the same rows due.
	tick := func(b *testing.B, sql string, at time.Time, want func(pgx.Row) error) {
		for b.Loop() {
			err := pgx.BeginFunc(testkit.Context(b), db, func(tx pgx.Tx) error {
				if err := want(tx.QueryRow(testkit.Context(b), sql, at)); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				b.Fatal(err)
			}
		}
	}
	b.Run("sla-tick-600-due", func(b *testing.B) {
		tick(b, "select * from public.sla_tick($1, 500)", benchNow, expectCounts(b, 300, 300))
	})
	b.Run("sla-tick-none-due", func(b *testing.B) {
		tick(b, "select * from public.sla_tick($1, 500)", benchNow.Add(-time.Hour), expectCounts(b, 0, 0))
	})
	b.Run("follow-up-tick-300-due", func(b *testing.B) {
		tick(b, "select * from public.follow_up_tick($1, 500)", benchNow, expectCounts(b, 200, 100))
	})
	b.Run("alerts", func(b *testing.B) {
		for b.Loop() {
			alerts, err := sla.Alerts(testkit.Context(b), db, benchNow)
			if err != nil || len(alerts) != sla.MaxAlerts {
				b.Fatalf("%d alerts, %v", len(alerts), err)
			}
		}
	})
	b.Run("summary-30-days", func(b *testing.B) {
		for b.Loop() {
			rows, err := sla.Summary(testkit.Context(b), db, benchNow.Add(-30*24*time.Hour), benchNow)
			if err != nil || len(rows) != 12 {
				b.Fatalf("%d rows, %v", len(rows), err)
			}
		}
	})
}

// errRollback ends a benchmark's transaction without committing it.
var errRollback = errors.New("rollback")

func expectCounts(b *testing.B, first, second int) func(pgx.Row) error {
	return func(row pgx.Row) error {
		var x, y int
		if err := row.Scan(&x, &y); err != nil {
			return err
		}
		if x != first || y != second {
			b.Fatalf("tick made (%d, %d), want (%d, %d)", x, y, first, second)
		}
		return nil
	}
}

// loadMillion writes the rows straight, with the tables' triggers off (this
// database is the benchmark's own), SLA columns and all:
//
//	300        warning due at benchNow (warned in the last 5 s)
//	300        deadline passed in the last 5 s, warned before
//	5,000      new, unanswered, not due for 30 min
//	9,400      breached long ago, still unanswered and open (the alerts list)
//	40,000     closed or spam, unanswered
//	945,000    answered (one in ten late and breached), over the last 60 days
func loadMillion(b *testing.B, db *pgxpool.Pool) {
	exec(b, db, "alter table public.conversations disable trigger user")
	exec(b, db, "alter table public.follow_up_tasks disable trigger user")
	exec(b, db, `
insert into public.conversations (form, email, source, quality, lead_score, status, created_at, updated_at,
  first_response_at, sla_response_deadline, sla_warning_at, sla_warning_sent_at, sla_breached, sla_breached_at, closed_at)
select 'contact_form', 'lead' || g || '@example.com',
       (array['website', 'facebook', 'google', 'referral'])[1 + g % 4],
       (array['hot', 'warm', 'cold'])[1 + g % 3]::public.lead_quality,
       50,
       case k.kind when 'closed' then case when g % 2 = 0 then 'closed' else 'spam' end
                   when 'answered' then (array['contacted', 'qualified', 'converted', 'closed'])[1 + g % 4]
                   when 'late' then 'contacted'
                   else 'new' end::public.conversation_status,
       t.created, t.created,
       case k.kind when 'answered' then t.created + (60 + g % 3000) * interval '1 second'
                   when 'late' then t.created + interval '2 hours' end,
       t.created + t.win,
       t.created + t.win / 2,
       case when k.kind in ('breach', 'breached', 'late') then t.created + t.win / 2 end,
       k.kind in ('breached', 'late'),
       case when k.kind in ('breached', 'late') then t.created + t.win end,
       case when k.kind = 'closed' or (k.kind = 'answered' and g % 4 = 3) then t.created + interval '2 hours' end
  from generate_series(1, 1000000) g
  cross join lateral (
    select case when g <= 300 then 'warn' when g <= 600 then 'breach' when g <= 5600 then 'waiting'
                when g <= 15000 then 'breached' when g <= 55000 then 'closed'
                when g % 10 = 0 then 'late' else 'answered' end as kind
  ) k
  cross join lateral (
    select case k.kind
             when 'warn' then $1::timestamptz - interval '450 seconds' - (g % 5) * interval '1 second'
             when 'breach' then $1::timestamptz - interval '15 minutes' - (g % 5) * interval '1 second'
             when 'waiting' then $1::timestamptz - (g % 60) * interval '1 second'
             else $1::timestamptz - interval '1 day' - ((g::bigint * 5) % (59 * 86400)) * interval '1 second'
           end as created,
           case when k.kind in ('warn', 'breach') then interval '15 minutes' else interval '1 hour' end as win
  ) t`, benchNow)
	exec(b, db, `
insert into public.follow_up_tasks (conversation_id, status, follow_up_date, sla_deadline, due_notified_at, completed_at)
select c.id,
       case when c.n <= 5300 then 'scheduled' else 'completed' end::public.follow_up_status,
       case when c.n <= 200 then $1::timestamptz - (c.n % 5) * interval '1 second'
            when c.n <= 300 then $1::timestamptz - interval '2 hours'
            when c.n <= 5300 then $1::timestamptz + interval '1 day' + c.n * interval '1 second'
            else $1::timestamptz - interval '3 days' end,
       case when c.n <= 200 then $1::timestamptz + interval '1 hour'
            when c.n <= 300 then $1::timestamptz - (c.n % 5) * interval '1 second'
            when c.n <= 5300 then $1::timestamptz + interval '2 days'
            else $1::timestamptz - interval '2 days' end,
       case when c.n between 201 and 300 then $1::timestamptz - interval '2 hours' end,
       case when c.n > 5300 then $1::timestamptz - interval '3 days' end
  from (select id, row_number() over () as n from public.conversations where first_response_at is not null limit 200000) c`, benchNow)
	exec(b, db, "alter table public.conversations enable trigger user")
	exec(b, db, "alter table public.follow_up_tasks enable trigger user")
	exec(b, db, "vacuum analyze public.conversations")
	exec(b, db, "vacuum analyze public.follow_up_tasks")
}

// explainTick runs one tick at benchNow in a transaction it rolls back, with
// auto_explain printing the plan of every statement inside the function.
func explainTick(b *testing.B, url, sql string) []string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	var plans []string
	foreignKeyChecks, doorbells := 0, 0
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		switch {
		case strings.Contains(n.Message, "FOR KEY SHARE OF x"):
			foreignKeyChecks++ // a primary-key probe per foreign key of each inserted event and timeline entry
		case strings.Contains(n.Message, "pg_notify("):
			doorbells++ // the outbox's doorbell, once per inserted event
		case strings.Contains(n.Message, "plan:"):
			plans = append(plans, n.Message)
		}
	}
	ctx := testkit.Context(b)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, s := range []string{
		"load 'auto_explain'",
		"set auto_explain.log_min_duration = 0",
		"set auto_explain.log_analyze = on",
		"set auto_explain.log_buffers = on",
		"set auto_explain.log_nested_statements = on",
		"set auto_explain.log_level = 'notice'",
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("%s: %v (auto_explain needs a superuser and the contrib modules)", s, err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	rows, err := tx.Query(ctx, sql, benchNow)
	if err != nil {
		b.Fatal(err)
	}
	counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int, error) {
		var c [2]int
		err := r.Scan(&c[0], &c[1])
		return c, err
	})
	took := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("%s at %s made %v in %s (under auto_explain); the plans inside it, less %d foreign-key probes (a primary-key lookup each) and %d doorbells (pg_notify):\n%s",
		sql, benchNow.Format(time.RFC3339), counts[0], took.Round(time.Microsecond), foreignKeyChecks, doorbells, strings.Join(plans, "\n\n"))
	return plans
}

// requirePlan fails unless the plans read through every named index and
// never scan a whole table.
func requirePlan(b *testing.B, plans []string, indexes ...string) {
	all := strings.Join(plans, "\n")
	for _, idx := range indexes {
		if !strings.Contains(all, "Index Scan using "+idx) && !strings.Contains(all, "Bitmap Index Scan on "+idx) {
			b.Errorf("no plan reads through %s", idx)
		}
	}
	for _, table := range []string{"conversations", "follow_up_tasks", "lead_events"} {
		if strings.Contains(all, "Seq Scan on "+table) {
			b.Errorf("a plan scans the whole of %s", table)
		}
	}
	if b.Failed() {
		b.FailNow()
	}
}

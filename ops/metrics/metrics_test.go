package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/ops/metrics"
)

// patient bounds the tests' reads of the database's figures: a minute, not the default
// 2s (its first read opens a connection), which a loaded machine can exceed; a test that
// reads the figures is not about that bound.
const patient = time.Minute

// families gathers m's metrics by name.
func families(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	return byName
}

// value is the value of the family's only series.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || len(f.Metric) != 1 {
		t.Fatalf("%s: %v", name, f)
	}
	switch m := f.Metric[0]; {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

// The SLA counters are kept by the database as leads are warned and
// breached, and agree with public.sla_lead_outcomes: a breach declared by
// the engine and a late first answer count, an answer in time and spam do
// not.
func TestSLACountersAgreeWithTheOutcomesView(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	now := time.Now()
	lead := func(name string, created time.Time) string {
		t.Helper()
		var id string
		if err := db.QueryRow(ctx, `insert into conversations (form, name, email, created_at) values ('contact_form', $1::text, $2::text, $3::timestamptz) returning id`,
			name, strings.ToLower(name)+"@example.com", created).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	setStatus := func(id, status string) {
		t.Helper()
		if _, err := db.Exec(ctx, `update conversations set status = $2::conversation_status where id = $1::uuid`, id, status); err != nil {
			t.Fatal(err)
		}
	}
	twoDaysAgo := now.Add(-48 * time.Hour)
	lead("Unanswered", twoDaysAgo)                        // breached by the engine
	setStatus(lead("Late", twoDaysAgo), "contacted")      // answered after its deadline
	setStatus(lead("InTime", now), "contacted")           // answered in time
	setStatus(lead("Spam", twoDaysAgo), "spam")           // no lead
	lead("Warned", now.Add(-23*time.Hour-45*time.Minute)) // within its warning window
	if _, err := db.Exec(ctx, `select public.sla_tick($1::timestamptz, 500)`, now); err != nil {
		t.Fatal(err)
	}

	var breached, warned int
	if err := db.QueryRow(ctx, `select count(*) filter (where breached) from sla_lead_outcomes`).Scan(&breached); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `select count(*) from conversations where sla_warning_sent_at is not null`).Scan(&warned); err != nil {
		t.Fatal(err)
	}
	if breached != 2 || warned != 1 {
		t.Fatalf("the scenario made %d breached and %d warned leads, want 2 and 1", breached, warned)
	}
	if _, err := db.Exec(ctx, `update lead_events set created_at = $1::timestamptz - interval '1 hour' where id = (select id from lead_events limit 1)`, now); err != nil {
		t.Fatal(err)
	}
	fams := families(t, metrics.New(metrics.Options{DB: db, Now: func() time.Time { return now }, DBTimeout: patient}))
	if got := value(t, fams, "leadrelay_sla_breaches_total"); got != float64(breached) {
		t.Errorf("leadrelay_sla_breaches_total = %v, sla_lead_outcomes says %d", got, breached)
	}
	if got := value(t, fams, "leadrelay_sla_warnings_total"); got != float64(warned) {
		t.Errorf("leadrelay_sla_warnings_total = %v, want %d", got, warned)
	}
	if got := value(t, fams, "leadrelay_outbox_events_waiting"); got < 5 {
		t.Errorf("leadrelay_outbox_events_waiting = %v, want every lead's event", got)
	}
	if got := value(t, fams, "leadrelay_outbox_oldest_waiting_seconds"); got != 3600 {
		t.Errorf("leadrelay_outbox_oldest_waiting_seconds = %v, want the hour-old event's 3600", got)
	}
}

// A database that does not answer makes leadrelay_database_up 0, not a
// failed scrape.
func TestDatabaseDownIsAFigure(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	db.Close()
	fams := families(t, metrics.New(metrics.Options{DB: db}))
	if got := value(t, fams, "leadrelay_database_up"); got != 0 {
		t.Errorf("leadrelay_database_up = %v with a closed pool", got)
	}
	if _, ok := fams["leadrelay_outbox_events_waiting"]; ok {
		t.Error("outbox figures reported without a database")
	}
}

func TestDeliveriesRetriesAndLeader(t *testing.T) {
	t.Parallel()
	leader := true
	m := metrics.New(metrics.Options{Channels: []leadrelay.Channel{"slack", "email"}, Leader: func() bool { return leader }})
	m.DeliveryAttempted("slack", leadrelay.DeliveryPending, 40*time.Millisecond)
	m.DeliveryAttempted("slack", leadrelay.DeliverySent, 20*time.Millisecond)
	m.DeliveryAttempted("email", leadrelay.DeliveryFailed, time.Second)

	expect := `
# HELP leadrelay_deliveries_total Deliveries that ended on this replica, by channel and outcome (sent, failed).
# TYPE leadrelay_deliveries_total counter
leadrelay_deliveries_total{channel="email",outcome="failed"} 1
leadrelay_deliveries_total{channel="email",outcome="sent"} 0
leadrelay_deliveries_total{channel="slack",outcome="failed"} 0
leadrelay_deliveries_total{channel="slack",outcome="sent"} 1
# HELP leadrelay_delivery_retries_total Failed delivery attempts that will be retried, by channel.
# TYPE leadrelay_delivery_retries_total counter
leadrelay_delivery_retries_total{channel="email"} 0
leadrelay_delivery_retries_total{channel="slack"} 1
# HELP leadrelay_sla_leader 1 while this replica holds the SLA leader lease and runs the SLA jobs, else 0.
# TYPE leadrelay_sla_leader gauge
leadrelay_sla_leader 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(expect),
		"leadrelay_deliveries_total", "leadrelay_delivery_retries_total", "leadrelay_sla_leader"); err != nil {
		t.Error(err)
	}
	if got := testutil.CollectAndCount(m.Registry(), "leadrelay_delivery_attempt_duration_seconds"); got != 3 {
		t.Errorf("%d attempt-duration series, want 3 (slack retry, slack sent, email failed)", got)
	}
	leader = false
	if got := value(t, families(t, m), "leadrelay_sla_leader"); got != 0 {
		t.Errorf("leadrelay_sla_leader = %v after the lease passed on", got)
	}
}

// scrapeText is what Prometheus reads from m, with one of everything
// observed so every family has a series.
func scrapeText(t *testing.T) string {
	t.Helper()
	m := metrics.New(metrics.Options{DB: dbtest.New(t), Channels: []leadrelay.Channel{"slack"}, Leader: func() bool { return false }, Version: "v1", Commit: "abc", DBTimeout: patient})
	m.ObserveRequest(http.MethodPost, "/api/submit-contact", http.StatusCreated, 3*time.Millisecond)
	m.DeliveryAttempted("slack", leadrelay.DeliverySent, 10*time.Millisecond)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// The metrics pass Prometheus' own lint (what `promtool check metrics`
// runs), and promtool itself when it is installed (.ci/run installs it).
func TestMetricsPassPromtool(t *testing.T) {
	t.Parallel()
	m := metrics.New(metrics.Options{DB: dbtest.New(t), Leader: func() bool { return false }})
	m.ObserveRequest(http.MethodGet, "/healthz", http.StatusOK, time.Millisecond)
	m.DeliveryAttempted("slack", leadrelay.DeliverySent, time.Millisecond)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}

	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		promtool, _ = exec.LookPath("promtool")
	}
	if promtool == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is required under CI=true (.ci/run installs it)")
		}
		t.Skip("SKIPPED: promtool not found (set PROMTOOL, or run .ci/run, which installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrapeText(t))
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// Every metric the README names exists.
func TestEveryMetricTheREADMENamesExists(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\bleadrelay_(?:http|deliver|outbox|sla|database|build)[a-z_]*[a-z]`).FindAllString(string(readme), -1)
	if len(names) == 0 {
		t.Fatal("the README names no metric")
	}
	text := scrapeText(t)
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(?:_bucket|_sum|_count)?[ {]`).MatchString(text) {
			t.Errorf("the README names %s; the scrape has no such series", name)
		}
	}
}

// BenchmarkScrape times one scrape (database figures read afresh each time)
// over 500,000 processed and 10,000 waiting outbox events and 2,000,000
// delivery logs, the size at which the old /metrics took 0.43 s:
//
//	go run ./dev/tools/withpostgres -- go test -run '^$' -bench BenchmarkScrape -benchtime 20x ./ops/metrics/
func BenchmarkScrape(b *testing.B) {
	ctx := context.Background()
	db := dbtest.New(b)
	if err := seedScrape(ctx, db); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		m := metrics.New(metrics.Options{DB: db}) // a fresh collector: no figures reused
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "leadrelay_outbox_events_waiting 10000\n") {
			b.Fatalf("scrape: %d\n%s", rec.Code, rec.Body)
		}
	}
}

// seedScrape fills the outbox and the delivery logs for BenchmarkScrape on
// one connection, released however the seeding ends.
func seedScrape(ctx context.Context, db *pgxpool.Pool) error {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// Rows straight into the tables, triggers off: the figures' queries are
	// what is measured, not the intake.
	for _, sql := range []string{
		`set session_replication_role = replica`,
		`insert into conversations (id, form, name, email, quality, lead_score, sla_response_deadline, sla_warning_at)
		   values ('00000000-0000-0000-0000-00000000000a', 'contact_form', 'Bench', 'bench@example.com', 'warm', 50, now() + interval '1 hour', now() + interval '45 minutes')`,
		`insert into lead_events (event_type, conversation_id, idempotency_key, processed, processed_at, created_at)
		   select 'lead.created', '00000000-0000-0000-0000-00000000000a', 'done-' || g, true, now(), now() - g * interval '1 second'
		   from generate_series(1, 500000) g`,
		`insert into lead_events (event_type, conversation_id, idempotency_key, created_at)
		   select 'lead.created', '00000000-0000-0000-0000-00000000000a', 'waiting-' || g, now() - g * interval '1 second'
		   from generate_series(1, 10000) g`,
		`insert into notification_logs (lead_event_id, conversation_id, channel, status)
		   select e.id, e.conversation_id, c.channel, 'sent'
		   from (select id, conversation_id from lead_events where processed limit 500000) e
		   cross join (values ('slack'::notification_channel), ('email'), ('telegram'), ('sms')) c(channel)`,
		`set session_replication_role = origin`,
		`vacuum analyze lead_events`,
		`vacuum analyze notification_logs`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	return nil
}

// Counting never waits on another transaction: with every counter row held
// by an open transaction (a paused SLA leader's batch, say), a lead
// answered late still commits at once, and both counts are kept.
func TestCountingNeverWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	var lead string
	if err := db.QueryRow(ctx, `insert into conversations (form, name, email, created_at) values ('contact_form', 'Late', 'late@example.com', now() - interval '2 days') returning id`).Scan(&lead); err != nil {
		t.Fatal(err)
	}
	paused, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer paused.Rollback(ctx)
	if _, err := paused.Exec(ctx, `select leadrelay_private.metric_counter_add('sla_breaches', 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := paused.Exec(ctx, `select from leadrelay_private.metric_counters for update`); err != nil {
		t.Fatal(err)
	}

	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// A wait on the held counters would last until the test ends, so any bound shows it; 30s,
	// since the commit's wait for PostgreSQL's NOTIFY queue lock (the answer's timeline entry
	// NOTIFYs), shared by every database of the server, counts against it too.
	if _, err := tx.Exec(ctx, `set local lock_timeout = '30s'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `update conversations set status = 'contacted' where id = $1::uuid`, lead); err != nil {
		t.Fatalf("a late answer waited on the held counters: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := paused.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	fams := families(t, metrics.New(metrics.Options{DB: db, DBTimeout: patient}))
	if got := value(t, fams, "leadrelay_sla_breaches_total"); got != 6 {
		t.Errorf("leadrelay_sla_breaches_total = %v, want 5 + 1", got)
	}
}

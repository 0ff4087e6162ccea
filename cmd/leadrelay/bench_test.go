package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/truenester/leadrelay/dev/devpostgres"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// BenchmarkDelivery measures delivery end to end through the real program
// (`leadrelay serve` as a process of its own, LISTEN on, the default sweep)
// on a private PostgreSQL with pg_stat_statements, durable commits and
// wal_level=logical (as on Supabase):
//   - the time from the intake's 201 to the alert at a Slack peer, at 50
//     and 200 leads/s and as fast as 16 clients post;
//   - a backlog of 20,000 leads drained to Slack and Telegram: deliveries/s,
//     and per lead the SQL time, calls, rows, transactions and WAL bytes
//     (pg_stat_statements, pg_stat_database, pg_stat_wal), the service's CPU
//     time and its RSS;
//   - the plans (EXPLAIN ANALYZE, BUFFERS, through auto_explain) of the
//     delivery functions at 20,000 waiting events, then again after 200,000
//     delivered with their dead tuples left unvacuumed.
//
// With BENCH_BASE set to a git revision, that revision is built too and
// measured in the same run, interleaved, for a before/after. `make
// bench-delivery` runs it; the figures are printed, never asserted.
func BenchmarkDelivery(b *testing.B) {
	for range b.N {
		benchDelivery(b)
	}
}

type benchBuild struct {
	name string
	bin  string
}

func benchDelivery(b *testing.B) {
	ctx := context.Background()
	pg, err := devpostgres.Start(ctx, devpostgres.Options{Durable: true, Settings: []string{
		"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=top",
		"wal_level=logical", "max_wal_senders=4",
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer pg.Stop()

	var builds []benchBuild
	if base := os.Getenv("BENCH_BASE"); base != "" {
		builds = append(builds, benchBuild{"base " + base, buildRevision(b, base)})
	}
	builds = append(builds, benchBuild{"this tree", buildTree(b, "../..")})

	duration := 10 * time.Second
	if v := os.Getenv("BENCH_DURATION"); v != "" {
		if duration, err = time.ParseDuration(v); err != nil {
			b.Fatalf("BENCH_DURATION: %v", err)
		}
	}
	loads := strings.Split(cmp.Or(os.Getenv("BENCH_LOADS"), "50,200,max"), ",")
	fmt.Println("delivery: time from the intake's 201 to the alert at the Slack peer")
	fmt.Printf("%-16s %-18s %7s %8s %9s %9s %9s\n", "build", "load", "leads", "leads/s", "p50", "p99", "max")
	for _, load := range []struct {
		key         string
		name        string
		rate        int // leads per second; 0: as fast as the clients go
		concurrency int
	}{
		{"50", "50 leads/s", 50, 4},
		{"200", "200 leads/s", 200, 8},
		{"max", "max (16 clients)", 0, 16},
	} {
		if !slices.Contains(loads, load.key) {
			continue
		}
		for _, bl := range builds {
			latencyRun(b, pg, bl, load.name, load.rate, load.concurrency, duration)
		}
	}
	fmt.Println()
	backlog := 20000
	if v := os.Getenv("BENCH_BACKLOG"); v != "" {
		if backlog, err = strconv.Atoi(v); err != nil {
			b.Fatalf("BENCH_BACKLOG: %v", err)
		}
	}
	if backlog > 0 {
		for _, bl := range builds {
			backlogRun(b, pg, bl, backlog)
		}
		fmt.Println()
	}
	if os.Getenv("BENCH_PLANS") != "off" {
		plans(b, pg, builds[len(builds)-1])
	}
}

var dbCounter int

// newDatabase creates a database on pg and migrates it with bin.
func newDatabase(b *testing.B, pg *devpostgres.Server, bin string) string {
	dbCounter++
	name := fmt.Sprintf("bench_%d_%d", os.Getpid(), dbCounter)
	conn := benchConnect(b, pg.URL)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "create database "+name); err != nil {
		b.Fatal(err)
	}
	url := strings.Replace(pg.URL, "/postgres?", "/"+name+"?", 1)
	cmd := exec.Command(bin, "migrate")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("migrate: %v\n%s", err, out)
	}
	return url
}

func benchConnect(b *testing.B, url string) *pgx.Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

func buildTree(b *testing.B, dir string) string {
	out := filepath.Join(b.TempDir(), "leadrelay")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/leadrelay")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", dir, err, msg)
	}
	return out
}

func buildRevision(b *testing.B, rev string) string {
	dir := filepath.Join(b.TempDir(), "base")
	if msg, err := exec.Command("git", "worktree", "add", "--detach", dir, rev).CombinedOutput(); err != nil {
		b.Fatalf("git worktree add %s: %v\n%s", rev, err, msg)
	}
	defer exec.Command("git", "worktree", "remove", "--force", dir).Run()
	return buildTree(b, dir)
}

// service is a running `leadrelay serve`.
type service struct {
	cmd  *exec.Cmd
	base string
}

func startService(b *testing.B, bin string, vars map[string]string) *service {
	port := freePort(b)
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "LOG_LEVEL="+cmp.Or(os.Getenv("BENCH_LOG_LEVEL"), "error"),
		"RATE_LIMIT_PER_MINUTE=1000000", "RATE_LIMIT_BURST=1000000")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &service{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ready := false
	b.Cleanup(func() {
		if !ready { // the wait failed: the caller never got s to stop
			s.stop()
		}
	})
	testkit.WaitFor(b, time.Minute, bin+" serve to become ready", func() (bool, error) {
		res, err := http.Get(s.base + "/readyz")
		if err != nil {
			return false, nil // not listening yet
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK, nil
	})
	ready = true
	return s
}

func (s *service) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// rss is the process's resident memory now.
func (s *service) rss() int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// usage is a stopped process's CPU time and peak RSS.
func (s *service) usage() (cpu time.Duration, peak int64) {
	st := s.cmd.ProcessState
	if st == nil {
		return 0, 0
	}
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		peak = ru.Maxrss << 10
	}
	return st.UserTime() + st.SystemTime(), peak
}

var benchName = regexp.MustCompile(`Bench [0-9]+`)

func latencyRun(b *testing.B, pg *devpostgres.Server, bl benchBuild, name string, rate, concurrency int, duration time.Duration) {
	slack := notifierstest.NewSlack(b)
	url := newDatabase(b, pg, bl.bin)
	conn := benchConnect(b, url)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "create extension if not exists pg_stat_statements"); err != nil {
		b.Fatal(err)
	}
	statements := os.Getenv("BENCH_STATEMENTS") == "on"
	if statements {
		trackAll(b, conn)
	}
	svc := startService(b, bl.bin, map[string]string{
		"DATABASE_URL":      url,
		"SLACK_WEBHOOK_URL": slack.URL,
	})
	defer svc.stop()
	before := readCounters(b, conn)

	var mu sync.Mutex
	answered := map[string]time.Time{}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}, Timeout: 10 * time.Second}
	var ticks <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		ticks = t.C
	}
	next := make(chan int)
	go func() {
		defer close(next)
		end := time.After(duration)
		for i := 0; ; i++ {
			if ticks != nil {
				select {
				case <-ticks:
				case <-end:
					return
				}
			}
			select {
			case next <- i:
			case <-end:
				return
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				lead := fmt.Sprintf("Bench %06d", i)
				body := fmt.Sprintf(`{"name": %q, "email": "bench%d@example.com", "message": "benchmark lead"}`, lead, i)
				res, err := client.Post(svc.base+"/api/submit-contact", "application/json", strings.NewReader(body))
				if err != nil {
					b.Errorf("post: %v", err)
					return
				}
				at := time.Now()
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					b.Errorf("post: %d", res.StatusCode)
					return
				}
				mu.Lock()
				answered[lead] = at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	posted := time.Since(start)
	msgs := slack.WaitFor(b, len(answered), 2*time.Minute)

	var latencies []time.Duration
	for _, m := range msgs {
		lead := benchName.FindString(string(m.Body))
		if at, ok := answered[lead]; ok {
			// The alert may beat the 201 to the client: NOTIFY fires at commit.
			latencies = append(latencies, max(0, m.Received.Sub(at)))
		}
	}
	after := readCounters(b, conn)
	slices.Sort(latencies)
	n := float64(len(answered))
	fmt.Printf("%-16s %-18s %7d %8.0f %9s %9s %9s   per lead: SQL %.2f ms, %.2f transactions, PostgreSQL CPU %.2f ms (intake and delivery)\n", bl.name, name, len(answered), n/posted.Seconds(),
		pct(latencies, 0.50), pct(latencies, 0.99), pct(latencies, 1), (after.sqlMS-before.sqlMS)/n, float64(after.transactions-before.transactions)/n,
		float64((after.cpu-before.cpu).Microseconds())/1000/n)
	if statements {
		printStatements(b, conn, n)
	}
}

// trackAll makes pg_stat_statements count the statements inside functions
// too, in conn's database, for the sessions that start after.
func trackAll(b *testing.B, conn *pgx.Conn) {
	if _, err := conn.Exec(context.Background(), "alter database "+pgx.Identifier{conn.Config().Database}.Sanitize()+" set pg_stat_statements.track = 'all'"); err != nil {
		b.Fatal(err)
	}
}

// dbCounters are the database's cumulative counters that a lead's delivery
// moves.
type dbCounters struct {
	sqlMS        float64
	calls, rows  int64
	transactions int64
	walBytes     float64
	cpu          time.Duration // the server's, all databases: a figure the other work on a shared machine does not inflate
}

func readCounters(b *testing.B, conn *pgx.Conn) dbCounters {
	var c dbCounters
	err := conn.QueryRow(context.Background(), `select
			coalesce((select sum(total_exec_time) from pg_stat_statements s where s.dbid = d.oid and s.toplevel and s.query not like '%pg_stat%'), 0),
			coalesce((select sum(calls)::bigint from pg_stat_statements s where s.dbid = d.oid and s.toplevel and s.query not like '%pg_stat%'), 0),
			coalesce((select sum(rows)::bigint from pg_stat_statements s where s.dbid = d.oid and s.toplevel and s.query not like '%pg_stat%'), 0),
			(select xact_commit + xact_rollback from pg_stat_database where datid = d.oid),
			(select wal_bytes::float8 from pg_stat_wal)
		from pg_database d where d.datname = current_database()`).Scan(&c.sqlMS, &c.calls, &c.rows, &c.transactions, &c.walBytes)
	if err != nil {
		b.Fatal(err)
	}
	c.cpu = serverCPU(b, conn)
	return c
}

// serverCPU is the CPU time PostgreSQL's processes have used.
func serverCPU(b *testing.B, conn *pgx.Conn) time.Duration {
	cpu, err := devpostgres.CPU(context.Background(), conn)
	if err != nil {
		b.Fatal(err)
	}
	return cpu
}

// backlogRun saves leads with no service running, then starts one and times
// it until every alert reached both Slack and Telegram and every event is
// processed; it prints what each lead cost.
func backlogRun(b *testing.B, pg *devpostgres.Server, bl benchBuild, leads int) {
	ctx := context.Background()
	url := newDatabase(b, pg, bl.bin)
	conn := benchConnect(b, url)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `insert into conversations (form, name, email)
		select 'contact_form', 'Backlog ' || g, 'backlog' || g || '@example.com' from generate_series(1, $1) g`, leads); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "create extension if not exists pg_stat_statements"); err != nil {
		b.Fatal(err)
	}
	statements := os.Getenv("BENCH_STATEMENTS") == "on"
	if statements {
		trackAll(b, conn)
	}
	if _, err := conn.Exec(ctx, "checkpoint"); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "select pg_stat_statements_reset(), pg_stat_reset()"); err != nil {
		b.Fatal(err)
	}
	before := readCounters(b, conn)
	slack, telegram := notifierstest.NewSlack(b), notifierstest.NewTelegram(b)
	start := time.Now()
	svc := startService(b, bl.bin, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"TELEGRAM_BOT_TOKEN":    telegram.Token,
		"TELEGRAM_CHAT_ID":      telegram.ChatID,
		"TELEGRAM_API_BASE_URL": telegram.BaseURL,
	})
	defer svc.stop()
	slack.WaitFor(b, leads, 5*time.Minute)
	telegram.WaitFor(b, leads, 5*time.Minute)
	elapsed := time.Since(start)
	testkit.WaitForQuery(b, conn, time.Minute, "every event processed after its alerts arrived",
		"select not exists (select from lead_events where not processed)")
	after := readCounters(b, conn)
	rss := svc.rss()
	svc.stop()
	cpu, peak := svc.usage()
	n := float64(leads)
	fmt.Printf("%-16s backlog of %d leads to Slack and Telegram: %d deliveries in %s = %.0f deliveries/s (start-up included)\n",
		bl.name, leads, 2*leads, elapsed.Round(time.Millisecond), float64(2*leads)/elapsed.Seconds())
	fmt.Printf("%-16s per lead: SQL %.3f ms in %.2f calls (%.1f rows), %.2f transactions, %.0f WAL bytes, PostgreSQL CPU %.3f ms; service CPU %.3f ms (start-up included); RSS %.1f MiB (peak %.1f MiB)\n",
		bl.name, (after.sqlMS-before.sqlMS)/n, float64(after.calls-before.calls)/n, float64(after.rows-before.rows)/n,
		float64(after.transactions-before.transactions)/n, (after.walBytes-before.walBytes)/n, float64((after.cpu-before.cpu).Microseconds())/1000/n,
		float64(cpu.Microseconds())/1000/n, float64(rss)/(1<<20), float64(peak)/(1<<20))
	if statements {
		printStatements(b, conn, n)
	}
}

// printStatements prints the statements that took the most time, per lead
// (with track=all, a function's inner statements count in its own time too).
func printStatements(b *testing.B, conn *pgx.Conn, leads float64) {
	rows, err := conn.Query(context.Background(), `select total_exec_time, calls, rows, regexp_replace(left(query, 110), '\s+', ' ', 'g')
		from pg_stat_statements s join pg_database d on d.oid = s.dbid
		where d.datname = current_database() and s.query not like '%pg_stat%'
		order by total_exec_time desc limit 16`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ms float64
		var calls, nrows int64
		var query string
		if err := rows.Scan(&ms, &calls, &nrows, &query); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("    %7.3f ms %6.3f calls %7.2f rows per lead  %s\n", ms/leads, float64(calls)/leads, float64(nrows)/leads, query)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
}

// plans prints the plans of the delivery functions' statements, through
// auto_explain (a function's inner statements are nested), at 20,000
// waiting events, then after 200,000 delivered events whose dead tuples no
// vacuum has removed.
func plans(b *testing.B, pg *devpostgres.Server, bl benchBuild) {
	ctx := context.Background()
	url := newDatabase(b, pg, bl.bin)
	var notices []string
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("%s: %v", sql, err)
		}
	}
	// Bulk rows straight into the tables (triggers off): the plans, not the
	// intake, are measured here.
	exec("alter table notification_logs set (autovacuum_enabled = off)")
	exec("alter table lead_events set (autovacuum_enabled = off)")
	waiting := func(n int) {
		exec("set session_replication_role = replica")
		exec(`with c as (
				insert into conversations (form, name, email, quality, lead_score, sla_response_deadline, sla_warning_at)
				select 'contact_form', 'Plan ' || g, 'plan' || g || '@example.com', 'cold', 0, now() + interval '1 day', now() + interval '23 hours'
				  from generate_series(1, $1) g
				returning id)
			insert into lead_events (event_type, conversation_id, idempotency_key)
			select 'lead.created', c.id, 'lead.created:' || c.id from c`, n)
		exec("set session_replication_role = origin")
		exec("analyze")
	}
	delivered := func(n int) {
		exec("set session_replication_role = replica")
		exec(`with c as (
				insert into conversations (form, name, email, quality, lead_score, sla_response_deadline, sla_warning_at)
				select 'contact_form', 'Done ' || g, 'done' || g || '@example.com', 'cold', 0, now() + interval '1 day', now() + interval '23 hours'
				  from generate_series(1, $1) g
				returning id)
			insert into lead_events (event_type, conversation_id, idempotency_key, available_at)
			select 'lead.created', c.id, 'lead.created:' || c.id, now() - interval '1 hour' from c`, n)
		// Each event opened, its two deliveries pending, then sent, then the
		// event processed: the dead tuples a real drain leaves behind.
		exec(`insert into notification_logs (lead_event_id, conversation_id, channel, next_attempt_at)
			select e.id, e.conversation_id, ch, now() - interval '1 hour'
			  from lead_events e cross join unnest('{slack,telegram}'::notification_channel[]) ch
			 where e.deliveries_opened_at is null and e.available_at < now() - interval '30 minutes'`)
		exec(`update lead_events set deliveries_opened_at = now() where deliveries_opened_at is null and available_at < now() - interval '30 minutes'`)
		exec(`update notification_logs set attempts = 1, lease_owner = 'bench', lease_expires_at = now() where status = 'pending' and next_attempt_at < now() - interval '30 minutes'`)
		exec(`update notification_logs set status = 'sent', sent_at = now(), next_attempt_at = null, lease_owner = null, lease_expires_at = null where status = 'pending' and next_attempt_at < now() - interval '30 minutes'`)
		exec(`update lead_events set processed = true, processed_at = now() where not processed and deliveries_opened_at is not null`)
		exec("set session_replication_role = origin")
		exec("analyze")
	}
	explain := func(title string) {
		exec("load 'auto_explain'")
		exec("set auto_explain.log_min_duration = 0")
		exec("set auto_explain.log_analyze = on")
		exec("set auto_explain.log_buffers = on")
		exec("set auto_explain.log_timing = on")
		exec("set auto_explain.log_nested_statements = on")
		exec("set auto_explain.log_level = notice")
		exec("set client_min_messages = notice")
		notices = nil
		var opened int
		if err := conn.QueryRow(ctx, "select open_lead_events('{slack,telegram}', 8, now())").Scan(&opened); err != nil {
			b.Fatal(err)
		}
		rows, err := conn.Query(ctx, "select log_id, attempt from claim_deliveries('bench', '2 minutes', '{slack,telegram}', '{8,8}', now())")
		if err != nil {
			b.Fatal(err)
		}
		var outcomes []string
		for rows.Next() {
			var id string
			var attempt int
			if err := rows.Scan(&id, &attempt); err != nil {
				b.Fatal(err)
			}
			outcomes = append(outcomes, fmt.Sprintf(`{"log_id": %q, "attempt": %d, "status": "sent"}`, id, attempt))
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		exec("select record_deliveries($1::jsonb, '{slack,telegram}', now())", "["+strings.Join(outcomes, ",")+"]")
		exec("set auto_explain.log_min_duration = -1")
		fmt.Printf("plans %s (opened %d events, claimed and recorded %d deliveries):\n", title, opened, len(outcomes))
		// The functions' own statements; not the foreign-key checks and
		// one-line helpers they call.
		for _, n := range notices {
			if !strings.Contains(n, "duration:") || !slices.ContainsFunc([]string{
				"with fresh as", "with picked as", "with outcome as", "update public.lead_events e", "SELECT from public.lead_events",
			}, func(s string) bool { return strings.Contains(n, s) }) {
				continue
			}
			head, plan, _ := strings.Cut(n, "\n")
			if i := strings.Index(plan, "\n"); strings.HasPrefix(plan, "Query Text:") && i > 0 {
				// Keep the plan; the statement is in 60_delivery.sql.
				for _, marker := range []string{"\nAggregate", "\nUpdate", "\nLockRows", "\nNested Loop", "\nHash", "\nCTE Scan", "\nResult", "\nInsert"} {
					if j := strings.Index(plan, marker); j > 0 {
						plan = plan[j+1:]
						break
					}
				}
			}
			fmt.Println("  " + head)
			fmt.Println("    " + strings.ReplaceAll(strings.TrimSpace(plan), "\n", "\n    "))
		}
	}
	waiting(20000)
	explain("at 20,000 waiting events")
	delivered(200000)
	// The first scans after a burst step over its dead index entries once and
	// mark them dead for everyone (LP_DEAD); the scans after read only live
	// entries, as vacuum would leave them.
	explain("after 200,000 delivered (dead tuples not vacuumed), 20,000 waiting: the first claim")
	explain("after 200,000 delivered (dead tuples not vacuumed), 20,000 waiting: the next claim")
}

func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := min(len(sorted)-1, int(p*float64(len(sorted))))
	return fmt.Sprintf("%.1fms", float64(sorted[i].Microseconds())/1000)
}

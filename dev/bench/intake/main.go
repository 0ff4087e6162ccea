// Command intake loads the lead intake and compares it with the database's
// own ceiling for the same work, in one run on one machine:
//
//  1. the ceiling: pgx calling public.submit_lead directly, at the given
//     concurrency, with the payloads the intake would send;
//  2. the intake: HTTP POSTs to /api/submit-contact at the same concurrency
//     (and rate, if one is given), through the whole server: middleware,
//     rate limiter, decoding, the same SQL call, logging. The POSTs go
//     through a direct HTTP/1.1 client (poster), as lean as pgx is for the
//     ceiling: the website's visitors do not share the server's cores, so
//     the load should take as little of them as it can;
//     -net-http-client loads through net/http's client instead.
//
// It prints throughput and p50/p95/p99 latency for each and the ratio. By
// default it starts a throwaway PostgreSQL (devpostgres) and the server
// in-process on a loopback port; -database-url and -target point it at ones
// already running, on this machine only, because it writes thousands of
// fake leads.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/database/migrate"
	"github.com/truenester/leadrelay/dev/devpostgres"
	"github.com/truenester/leadrelay/edge/server"
	"github.com/truenester/leadrelay/supabase"
)

// The goals set for the intake on a 2-core machine (issue #14).
const (
	goalRatio      = 0.90
	goalP99        = 50 * time.Millisecond
	goalThroughput = 1000 // leads/s through HTTP
	goalSQLPerLead = 1.0  // ms of SQL execution per lead, from pg_stat_statements
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-intake:", err)
		os.Exit(1)
	}
}

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	rate        float64
	poolSize    int
	databaseURL string
	target      string
	rounds      int
	cpuProfile  string
	statements  bool
	netHTTP     bool
	durable     bool
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench-intake", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each phase runs (at most 5m)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each phase")
	fs.IntVar(&o.concurrency, "concurrency", 8, "requests in flight at once, in both phases (1-256)")
	fs.Float64Var(&o.rate, "rate", 0, "requests per second to offer in both phases; 0: as many as the workers manage")
	fs.IntVar(&o.poolSize, "pool-size", 0, "database connections, of the in-process server and of the ceiling alike; 0: pgx's default, max(4, CPUs) (the service's DB_POOL_INTAKE defaults to 10)")
	fs.StringVar(&o.databaseURL, "database-url", getenv("DATABASE_URL"), "a loopback PostgreSQL to use (default $DATABASE_URL; empty: start a throwaway one)")
	fs.StringVar(&o.target, "target", "", "base URL of a leadrelay already serving on loopback (default: start one in-process)")
	fs.IntVar(&o.rounds, "rounds", 3, "the phases alternate this many times, each for duration/rounds, so a neighbour's load falls on both alike")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (server and load) during the last intake phase to this file")
	fs.BoolVar(&o.statements, "statements", false, "also track the statements submit_lead and its triggers run, and print where each lead's SQL time and WAL go (throwaway PostgreSQL only)")
	fs.BoolVar(&o.durable, "durable", true, "the throwaway PostgreSQL commits as production does (fsync, synchronous_commit and full_page_writes on, wal_level=logical as on Supabase), so a lead is timed to the durable acknowledgement the intake promises; false: the speed settings the tests use, which make the database lighter than any real one")
	fs.BoolVar(&o.netHTTP, "net-http-client", false, "load the intake through net/http's client, whose per-request goroutine hand-offs cost this process (and so the server under test, on the same cores) more than the default direct client")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.duration <= 0 || o.duration > 5*time.Minute || o.warmup < 0 || o.warmup > time.Minute {
		return errors.New("-duration must be in (0, 5m] and -warmup in [0, 1m]")
	}
	if o.concurrency < 1 || o.concurrency > 256 || o.rate < 0 || o.rounds < 1 || o.rounds > 20 {
		return errors.New("-concurrency must be 1 to 256, -rate at least 0 and -rounds 1 to 20")
	}
	if o.target != "" {
		if err := requireLoopbackURL(o.target); err != nil {
			return err
		}
	}
	if o.databaseURL != "" {
		if err := requireLoopbackDatabase(o.databaseURL); err != nil {
			return err
		}
	}

	dbURL := o.databaseURL
	if dbURL == "" {
		fmt.Fprintln(stdout, "starting a throwaway PostgreSQL...")
		track := "top"
		if o.statements {
			track = "all"
		}
		settings := []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=" + track}
		if o.durable {
			settings = append(settings, "wal_level=logical", "max_wal_senders=4")
		}
		pg, err := devpostgres.Start(ctx, devpostgres.Options{Durable: o.durable, Settings: settings})
		if err != nil {
			return fmt.Errorf("throwaway postgres: %w", err)
		}
		defer pg.Stop()
		dbURL = pg.URL
	}
	if err := migrateDatabase(ctx, dbURL); err != nil {
		return err
	}
	if err := printDurability(ctx, stdout, dbURL); err != nil {
		return err
	}
	stats := newSQLStats(ctx, dbURL)
	defer stats.close()

	target := o.target
	if target == "" {
		url, stopServer, err := startServer(dbURL, o.poolSize)
		if err != nil {
			return err
		}
		defer stopServer()
		target = url
	}

	// The ceiling goes through a pool like the server's, so the two differ
	// only by the HTTP edge. (More connections than the server's would not
	// raise it: on two cores they add contention; -pool-size tries others.)
	pool, err := newPool(ctx, dbURL, o.poolSize)
	if err != nil {
		return err
	}
	defer pool.Close()

	runID := time.Now().UnixNano()
	leads := atomic.Int64{}
	direct := func(ctx context.Context) (int, error) {
		payload := leadBody(runID, leads.Add(1), true)
		var raw []byte
		err := pool.QueryRow(ctx, "select public.submit_lead($1::jsonb)", string(payload)).Scan(&raw)
		return 0, err
	}
	post, closeClient, err := newIntakeClient(target, o)
	if err != nil {
		return err
	}
	defer closeClient()
	intake := func(ctx context.Context) (int, error) {
		n := leads.Add(1)
		status, err := post(ctx, leadBody(runID, n, false), fmt.Sprintf("bench-%d-%d", runID, n))
		if err != nil {
			return status, err
		}
		if status != http.StatusCreated {
			return status, fmt.Errorf("status %d", status)
		}
		return status, nil
	}

	rate := "as fast as the workers go"
	if o.rate > 0 {
		rate = fmt.Sprintf("%.0f/s offered", o.rate)
	}
	client := "a direct HTTP/1.1 client"
	if o.netHTTP {
		client = "net/http's client"
	}
	fmt.Fprintf(stdout, "leadrelay intake load: %d CPUs (GOMAXPROCS %d), concurrency %d, %s, %s per phase in %d rounds, each after %s warm-up; HTTP through %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), o.concurrency, rate, o.duration, o.rounds, o.warmup, client)

	var profile io.WriteCloser
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		profile = f
		defer f.Close()
	}
	var ceiling, served result
	var ceilingSQL, servedSQL sqlCost
	perRound := o.duration / time.Duration(o.rounds)
	for round := 1; round <= o.rounds; round++ {
		fmt.Fprintf(stdout, "round %d of %d\n", round, o.rounds)
		before := stats.read(ctx)
		c, err := phase(ctx, stdout, "  database ceiling (pgx -> submit_lead)", o, perRound, direct)
		if err != nil {
			return err
		}
		ceilingSQL = ceilingSQL.add(stats.read(ctx).minus(before))
		before = stats.read(ctx)
		profiling := profile != nil && round == o.rounds
		if profiling {
			if err := pprof.StartCPUProfile(profile); err != nil {
				return fmt.Errorf("cpu profile: %w", err)
			}
		}
		s, err := phase(ctx, stdout, "  intake (HTTP POST /api/submit-contact)", o, perRound, intake)
		if profiling {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		servedSQL = servedSQL.add(stats.read(ctx).minus(before))
		ceiling, served = ceiling.add(c), served.add(s)
	}
	fmt.Fprintf(stdout, "all %d rounds\n", o.rounds)
	report(stdout, "  database ceiling (pgx -> submit_lead)", ceiling)
	report(stdout, "  intake (HTTP POST /api/submit-contact)", served)

	ratio := served.throughput() / ceiling.throughput()
	p99 := served.percentile(99)
	verdict := "MET"
	if ratio < goalRatio || p99 >= goalP99 || served.throughput() < goalThroughput {
		verdict = "MISSED"
	}
	fmt.Fprintf(stdout, "ratio intake/ceiling: %.2f (goal >= %.2f); intake %.0f leads/s (goal >= %d); intake p99 %s (goal < %s): goal %s\n",
		ratio, goalRatio, served.throughput(), goalThroughput, ms(p99), ms(goalP99), verdict)
	if stats.ok() {
		all := ceilingSQL.add(servedSQL)
		sqlVerdict := "MET"
		if all.msPerCall() > goalSQLPerLead {
			sqlVerdict = "MISSED"
		}
		fmt.Fprintf(stdout, "per lead (pg_stat_statements, both phases, %d calls): SQL %.3f ms (goal <= %.1f: %s), %.0f WAL bytes, %.2f transactions\n",
			all.calls, all.msPerCall(), goalSQLPerLead, sqlVerdict, all.perCall(all.walBytes), all.perCall(all.commits))
		if stats.local {
			fmt.Fprintf(stdout, "CPU per lead: PostgreSQL %.3f ms at the ceiling, %.3f ms through HTTP; this process (the load, and the server in the HTTP phase) %.3f ms at the ceiling, %.3f ms through HTTP\n",
				ceilingSQL.cpuPerCall(ceilingSQL.pgCPU), servedSQL.cpuPerCall(servedSQL.pgCPU),
				ceilingSQL.cpuPerCall(ceilingSQL.ownCPU), servedSQL.cpuPerCall(servedSQL.ownCPU))
		}
		if o.statements {
			if err := stats.printStatements(ctx, stdout, all.calls); err != nil {
				return err
			}
		}
	} else {
		fmt.Fprintln(stdout, "per lead SQL time: pg_stat_statements is not loaded in this database (the throwaway one has it)")
	}
	if o.rate > 0 {
		fmt.Fprintln(stdout, "(-rate caps both phases, so the ratio compares offered loads; run without it for the ceiling)")
	}
	return nil
}

// newIntakeClient returns a function that POSTs a lead to the intake with
// an Idempotency-Key and returns the answer's status, and one that closes
// its connections.
func newIntakeClient(target string, o options) (func(ctx context.Context, body []byte, key string) (int, error), func(), error) {
	const path = "/api/submit-contact"
	if !o.netHTTP {
		u, err := url.Parse(target)
		if err != nil {
			return nil, nil, fmt.Errorf("target: %w", err)
		}
		p := newPoster(u.Host, o.concurrency)
		return func(ctx context.Context, body []byte, key string) (int, error) {
			return p.post(ctx, path, [][2]string{{"Content-Type", "application/json"}, {"Idempotency-Key", key}}, body)
		}, p.close, nil
	}
	transport := &http.Transport{MaxIdleConnsPerHost: o.concurrency, MaxConnsPerHost: o.concurrency}
	client := &http.Client{Timeout: 10 * time.Second, Transport: transport}
	return func(ctx context.Context, body []byte, key string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+path, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}, transport.CloseIdleConnections, nil
}

// leadBody is a contact-form lead, unique per n so neither the idempotency
// key nor the duplicate window turns it into a lookup. The direct call's
// payload carries what the intake adds: the form and the key.
func leadBody(runID, n int64, direct bool) []byte {
	lead := map[string]any{
		"name":    "Load Test",
		"email":   fmt.Sprintf("load-%d-%d@example.com", runID, n),
		"phone":   fmt.Sprintf("05%08d", n%100_000_000),
		"message": fmt.Sprintf("Interested in a 2-bed in Dubai Marina (lead %d)", n),
		"source":  "website",
		"metadata": map[string]any{
			"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "marina-2br",
			"referrer": "https://www.google.com/", "landing_page": "/properties/marina", "country": "AE",
		},
		"device_info": map[string]any{"browser": "Chrome", "os": "Android", "device_type": "mobile"},
	}
	if direct {
		lead["form"] = "contact_form"
		lead["idempotency_key"] = fmt.Sprintf("bench-%d-%d", runID, n)
	}
	b, err := json.Marshal(lead)
	if err != nil {
		panic(err) // a map of strings always encodes
	}
	return b
}

// result is one phase's measurements.
type result struct {
	elapsed   time.Duration
	latencies []time.Duration // of the successful requests, sorted
	failures  map[string]int
}

// add pools two measurements, as if one ran after the other.
func (r result) add(o result) result {
	failures := maps.Clone(r.failures)
	if failures == nil {
		failures = map[string]int{}
	}
	for k, n := range o.failures {
		failures[k] += n
	}
	latencies := slices.Concat(r.latencies, o.latencies)
	slices.Sort(latencies)
	return result{elapsed: r.elapsed + o.elapsed, latencies: latencies, failures: failures}
}

func (r result) throughput() float64 { return float64(len(r.latencies)) / r.elapsed.Seconds() }

func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p/100+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

// phase warms up, then measures call for d at o.concurrency.
func phase(ctx context.Context, stdout io.Writer, name string, o options, d time.Duration, call func(context.Context) (int, error)) (result, error) {
	if o.warmup > 0 {
		load(ctx, o, o.warmup, call)
	}
	res := load(ctx, o, d, call)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	report(stdout, name, res)
	if len(res.latencies) == 0 {
		return res, fmt.Errorf("%s: no request succeeded: %v", name, res.failures)
	}
	return res, nil
}

func report(stdout io.Writer, name string, res result) {
	fmt.Fprintf(stdout, "%-42s %7d leads %8.1f/s  p50 %s  p95 %s  p99 %s  max %s",
		name, len(res.latencies), res.throughput(), ms(res.percentile(50)), ms(res.percentile(95)), ms(res.percentile(99)), ms(res.percentile(100)))
	if len(res.failures) > 0 {
		fmt.Fprintf(stdout, "  FAILURES %v", res.failures)
	}
	fmt.Fprintln(stdout)
}

// load runs call from o.concurrency workers for d. With a rate, requests
// are offered on a fixed schedule and a request's latency counts from its
// scheduled time, so a stall is not hidden by the workers slowing down.
func load(ctx context.Context, o options, d time.Duration, call func(context.Context) (int, error)) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var schedule chan time.Time
	if o.rate > 0 {
		schedule = make(chan time.Time, o.concurrency)
		go func() {
			defer close(schedule)
			start := time.Now()
			interval := time.Duration(float64(time.Second) / o.rate)
			for i := 0; ; i++ {
				at := start.Add(time.Duration(i) * interval)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Until(at)):
				}
				select {
				case <-ctx.Done():
					return
				case schedule <- at:
				}
			}
		}()
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  = map[string]int{}
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			var mine []time.Duration
			for {
				began := time.Now()
				if schedule != nil {
					at, ok := <-schedule
					if !ok {
						break
					}
					began = at
				}
				if ctx.Err() != nil {
					break
				}
				// The call gets its own deadline: a request in flight when
				// the phase ends finishes and is counted.
				callCtx, cancelCall := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				status, err := call(callCtx)
				cancelCall()
				if err != nil {
					mu.Lock()
					failures[failureKind(status, err)]++
					mu.Unlock()
					continue
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(latencies)
	return result{elapsed: time.Since(start), latencies: latencies, failures: failures}
}

func failureKind(status int, err error) string {
	if status != 0 {
		return fmt.Sprintf("HTTP %d", status)
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return "SQLSTATE " + pgErr.Code
	}
	return err.Error()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }

// startServer runs the service's handler on a loopback port, configured as
// in production except the rate limit, which one load-generating address
// would hit at once.
func startServer(dbURL string, poolSize int) (string, func(), error) {
	cfg, err := config.Load(func(k string) string {
		switch k {
		case "DATABASE_URL":
			return dbURL
		case "RATE_LIMIT_PER_MINUTE":
			return "1000000000"
		case "RATE_LIMIT_BURST":
			return "1000000"
		}
		return ""
	})
	if err != nil {
		return "", nil, err
	}
	pool, err := newPool(context.Background(), dbURL, poolSize)
	if err != nil {
		return "", nil, err
	}
	// Production logs every request at info; so does the load test, to
	// nowhere.
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pool.Close()
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           server.New(server.Deps{Logger: logger, DB: pool, Schema: supabase.FS, Edge: cfg.Edge}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		pool.Close()
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// newPool opens a pool as the service does, with poolSize connections at
// most (0: pgxpool's default, which the service uses).
func newPool(ctx context.Context, dbURL string, poolSize int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if poolSize > 0 {
		cfg.MaxConns = int32(poolSize)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database pool: %w", err)
	}
	return pool, nil
}

// sqlStats reads, from pg_stat_statements and pg_stat_wal, what the calls
// of submit_lead cost the database. Without pg_stat_statements (a database
// given with -database-url that does not preload it) it reads nothing.
type sqlStats struct {
	conn  *pgx.Conn
	local bool // PostgreSQL's processes are readable in /proc
}

// sqlCost is a difference of two readings.
type sqlCost struct {
	calls    int64
	execMS   float64
	walBytes float64
	commits  float64
	pgCPU    time.Duration // PostgreSQL's processes, when it runs on this machine
	ownCPU   time.Duration // this process: the load, and the in-process server
}

func (c sqlCost) add(o sqlCost) sqlCost {
	return sqlCost{c.calls + o.calls, c.execMS + o.execMS, c.walBytes + o.walBytes, c.commits + o.commits,
		c.pgCPU + o.pgCPU, c.ownCPU + o.ownCPU}
}

func (c sqlCost) minus(o sqlCost) sqlCost {
	return sqlCost{c.calls - o.calls, c.execMS - o.execMS, c.walBytes - o.walBytes, c.commits - o.commits,
		c.pgCPU - o.pgCPU, c.ownCPU - o.ownCPU}
}

// cpuPerCall is d per call, in ms.
func (c sqlCost) cpuPerCall(d time.Duration) float64 {
	return c.perCall(float64(d.Microseconds()) / 1000)
}

// ownCPU is the CPU time this process has used.
func ownCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func (c sqlCost) msPerCall() float64 { return c.perCall(c.execMS) }

func (c sqlCost) perCall(v float64) float64 {
	if c.calls == 0 {
		return 0
	}
	return v / float64(c.calls)
}

func newSQLStats(ctx context.Context, dbURL string) *sqlStats {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return &sqlStats{}
	}
	if _, err := conn.Exec(ctx, "create extension if not exists pg_stat_statements"); err != nil {
		conn.Close(ctx)
		return &sqlStats{}
	}
	if _, err := conn.Exec(ctx, "select pg_stat_statements_reset()"); err != nil {
		conn.Close(ctx)
		return &sqlStats{}
	}
	return &sqlStats{conn: conn, local: true}
}

func (s *sqlStats) ok() bool { return s.conn != nil }

func (s *sqlStats) close() {
	if s.conn != nil {
		s.conn.Close(context.Background())
	}
}

// read returns the totals so far; the difference of two readings is the
// cost of what ran between them (the readings' own statements are not
// counted: they do not call submit_lead).
func (s *sqlStats) read(ctx context.Context) sqlCost {
	var c sqlCost
	if s.conn == nil {
		return c
	}
	err := s.conn.QueryRow(ctx, `select
			coalesce((select sum(calls)::bigint from pg_stat_statements where toplevel and query like '%submit_lead%' and query not like '%pg_stat_statements%'), 0),
			coalesce((select sum(total_exec_time) from pg_stat_statements where toplevel and query like '%submit_lead%' and query not like '%pg_stat_statements%'), 0),
			(select wal_bytes::float8 from pg_stat_wal),
			(select xact_commit::float8 from pg_stat_database where datname = current_database())`).
		Scan(&c.calls, &c.execMS, &c.walBytes, &c.commits)
	if err != nil {
		s.conn.Close(ctx)
		s.conn = nil
		return c
	}
	if s.local {
		if c.pgCPU, err = devpostgres.CPU(ctx, s.conn); err != nil {
			s.local = false // a server elsewhere: its CPU is not ours to read
		}
	}
	c.ownCPU = ownCPU()
	return c
}

// printStatements prints the statements that cost the most time per lead,
// with their WAL per lead, over the whole run (warm-ups included): where a
// lead's SQL time goes, nested statements counted inside their callers.
func (s *sqlStats) printStatements(ctx context.Context, stdout io.Writer, leads int64) error {
	rows, err := s.conn.Query(ctx, `select total_exec_time, wal_bytes::float8, calls, regexp_replace(query, '\s+', ' ', 'g')
		from pg_stat_statements
		where query not like '%pg_stat_%'
		order by total_exec_time desc
		limit 15`)
	if err != nil {
		return fmt.Errorf("read pg_stat_statements: %w", err)
	}
	type statement struct {
		ExecMS   float64
		WALBytes float64
		Calls    int64
		Query    string
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[statement])
	if err != nil {
		return fmt.Errorf("read pg_stat_statements: %w", err)
	}
	var total int64
	if err := s.conn.QueryRow(ctx, `select coalesce(sum(calls), 0)::bigint from pg_stat_statements
		where toplevel and query like '%submit_lead%' and query not like '%pg_stat_%'`).Scan(&total); err != nil || total == 0 {
		return fmt.Errorf("count submit_lead calls: %v", err)
	}
	fmt.Fprintf(stdout, "where the SQL goes, per lead (%d calls of submit_lead, warm-ups included):\n", total)
	for _, st := range list {
		q := st.Query
		if len(q) > 100 {
			q = q[:100] + "..."
		}
		fmt.Fprintf(stdout, "  %7.3f ms %6.0f WAL B %5.2f calls  %s\n",
			st.ExecMS/float64(total), st.WALBytes/float64(total), float64(st.Calls)/float64(total), q)
	}
	return nil
}

func migrateDatabase(ctx context.Context, dbURL string) error {
	if _, err := migrate.RunURL(ctx, dbURL, supabase.FS); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// printDurability names the database's settings that decide what a commit
// waits for, so a figure can be read against them: with fsync or
// synchronous_commit off, a commit does not wait for the disk, and an
// acknowledged lead could be lost in a crash.
func printDurability(ctx context.Context, stdout io.Writer, dbURL string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	var fsync, syncCommit, walLevel string
	if err := conn.QueryRow(ctx, `select current_setting('fsync'), current_setting('synchronous_commit'), current_setting('wal_level')`).
		Scan(&fsync, &syncCommit, &walLevel); err != nil {
		return fmt.Errorf("read the database's durability: %w", err)
	}
	fmt.Fprintf(stdout, "database: fsync %s, synchronous_commit %s, wal_level %s\n", fsync, syncCommit, walLevel)
	return nil
}

func requireLoopbackDatabase(dbURL string) error {
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("database URL: %w", err)
	}
	if !isLoopback(cfg.Host) && !strings.HasPrefix(cfg.Host, "/") {
		return fmt.Errorf("the database at %s is not on this machine; the load test writes fake leads, so it runs on loopback only", cfg.Host)
	}
	return nil
}

func requireLoopbackURL(target string) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || !isLoopback(u.Hostname()) {
		return fmt.Errorf("-target %q must be an http:// URL on loopback (127.0.0.1, ::1, localhost)", target)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

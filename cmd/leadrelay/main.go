// Command leadrelay is TrueNester's lead pipeline: one binary that serves the
// HTTP edge and delivers notifications (serve), migrates the database
// (migrate), and runs everything on an embedded Postgres for development
// (dev).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/database/migrate"
	"github.com/truenester/leadrelay/database/outbox"
	"github.com/truenester/leadrelay/dev/devpostgres"
	"github.com/truenester/leadrelay/dispatch"
	"github.com/truenester/leadrelay/edge/console"
	"github.com/truenester/leadrelay/edge/server"
	"github.com/truenester/leadrelay/notifiers"
	"github.com/truenester/leadrelay/ops/health"
	"github.com/truenester/leadrelay/sla"
	"github.com/truenester/leadrelay/supabase"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "leadrelay:", err)
	}
	os.Exit(exitCode(err))
}

func newLogger(w io.Writer, level slog.Level, text bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// migrateDB applies the bootstrap, pending migrations and functions.
func migrateDB(ctx context.Context, url string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	conn, err := connectDB(ctx, url)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep, err := migrate.Run(ctx, conn, supabase.FS)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if rep.Bootstrapped {
		fmt.Fprintln(stdout, "bootstrapped plain Postgres with Supabase's roles and auth schema")
	}
	fmt.Fprintf(stdout, "applied %d migration(s) %v; re-applied %d functions-sql file(s)\n", len(rep.Applied), rep.Applied, rep.Functions)
	return nil
}

// settings is everything serve reads from the environment.
type settings struct {
	config.Config
	senders     []notifiers.Sender
	channelsOff []string // why each channel without settings is off
	// printAlerts: with no channel configured, print alerts on stdout (dev,
	// for `make run`). Off, such a process leaves them in the outbox.
	printAlerts bool
	dispatch    dispatch.Config
	sweep       time.Duration
	sla         sla.Config
	listener    net.Listener // the HTTP port, opened before anything starts; nil: serve opens PORT
	supabase    console.SupabaseConfig
	clock       clockwork.Clock // the one clock every part reads the time from
}

// loadSettings reads every setting and names every bad variable at once.
func loadSettings(getenv func(string) string) (settings, error) {
	return loadSettingsOn(getenv, clockwork.NewRealClock())
}

// loadSettingsOn is loadSettings with the clock every part reads (a test's).
func loadSettingsOn(getenv func(string) string, clock clockwork.Clock) (settings, error) {
	st := settings{clock: clock}
	var errs [5]error
	st.Config, errs[0] = config.Load(getenv)
	st.senders, st.channelsOff, errs[1] = notifiers.FromEnv(getenv, st.clock)
	st.dispatch, st.sweep, errs[2] = dispatch.ConfigFromEnv(getenv)
	st.sla, errs[3] = sla.ConfigFromEnv(getenv)
	st.supabase, errs[4] = console.SupabaseConfigFromEnv(getenv)
	st.dispatch.FrontendURL = st.FrontendURL()
	st.dispatch.Replica, st.sla.Replica = st.Replica, st.Replica
	return st, errors.Join(errs[:]...)
}

// serve runs the HTTP service and the dispatcher until ctx ends; then it
// lets in-flight requests finish, then in-flight deliveries. It answers
// /healthz at once; while the database is away at start-up it waits for it
// (with /readyz saying 503) and starts the background parts once it answers.
func serve(ctx context.Context, st settings, logger *slog.Logger, stdout io.Writer) error {
	pools, err := openPools(st.DatabaseURL, st.DB, st.sla.WithDefaults().Lease)
	if err != nil {
		return err
	}
	defer pools.close()
	parts := health.New(logger, st.clock)
	databaseUp := parts.Part("database")
	deps := server.Deps{Logger: logger, DB: pools.intake, AdminDB: pools.admin, Schema: supabase.FS, Edge: st.Edge, Clock: st.clock,
		Health: parts, DBTimeout: st.DB.IntakeTimeout}
	var engineRef atomic.Pointer[sla.Engine] // the SLA engine, once it runs: the leader gauge
	deps.Metrics = newMetrics(st, pools.metrics, &engineRef)
	st.dispatch.Observer = deps.Metrics

	// The background parts outlive ctx by the time it takes to finish their round.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	var work sync.WaitGroup
	work.Go(func() { parts.Run(workCtx) })
	var startWork func() error
	if st.Dispatch {
		for _, reason := range st.channelsOff {
			logger.Info("channel off", "reason", reason)
		}
		var printer notifiers.Sender // make run's alerts, when no channel is configured
		if st.printAlerts {
			printer = notifiers.NewConsole(stdout)
		}
		var d *dispatch.Dispatcher // nil: nothing to deliver to
		if len(st.senders) > 0 || printer != nil {
			st.dispatch.Health = parts
			if d, err = dispatch.New(outbox.New(pools.dispatch), st.senders, printer, st.dispatch, st.clock, logger); err != nil {
				return err
			}
			deps.Doorbell = d.Wake
			if len(st.senders) == 0 {
				logger.Info("no notification channel is configured: alerts are printed to the console")
			}
		} else {
			// A replica without channels claims nothing: opening an event for no
			// channel marks it processed, and the replicas that have channels
			// would never alert it. The event waits for one that has them.
			// /readyz names the dispatcher off but stays 200: the intake works,
			// and a 503 on every replica deployed with the same mistake would
			// stop leads being saved, which is worse. The warning and the
			// outbox's age (leadrelay_outbox_oldest_waiting_seconds, `leadrelay
			// status`) show it.
			parts.Off("dispatcher", "no notification channel is configured: alerts wait in the outbox; "+notifiers.SetAChannel)
			logger.Warn("no notification channel is configured: this replica delivers nothing, and alerts wait in the outbox for a replica that has a channel",
				"fix", notifiers.SetAChannel)
		}
		st.sla.Health = parts
		// The SLA jobs run on one replica at a time (a lease in the
		// database); every delivering replica campaigns. Without channels
		// they still run: they only write events, which then wait.
		engine, err := sla.New(pools.sla, st.sla, st.clock, logger)
		if err != nil {
			return err
		}
		engineRef.Store(engine)
		startWork = func() error {
			if d != nil {
				sweep, err := d.Sweep(st.sweep)
				if err != nil {
					return err
				}
				work.Go(func() {
					<-workCtx.Done()
					_ = sweep.Shutdown()
				})
				work.Go(func() { d.Run(workCtx) })
				if st.Listen {
					work.Go(func() { d.Listen(workCtx, st.DatabaseURL) })
				}
				logger.Info("delivering notifications", "replica", d.Replica(), "sweep", st.sweep.String(), "listen", st.Listen)
			}
			work.Go(func() {
				if err := engine.Run(workCtx); err != nil {
					logger.Error("SLA engine stopped", "err", err)
				}
			})
			return nil
		}
	} else {
		// Off on purpose, named so: /readyz then tells an intake-only process
		// from a delivering replica whose parts have not started.
		const why = "ENABLE_NOTIFICATION_WORKER=false: "
		parts.Off("dispatcher", why+"another process delivers the alerts")
		parts.Off("sla", why+"another process runs the SLA jobs")
		logger.Info("ENABLE_NOTIFICATION_WORKER=false: leads are saved here; another process delivers and watches SLAs")
	}

	// The admin console: live through one LISTEN connection, or a poll whose every look
	// has the admin deadline, per replica, from when the database answers; either is a
	// health part, as the doorbell's LISTEN.
	hub := console.NewHub(logger)
	startLive := func() {
		if st.Listen {
			work.Go(func() { hub.Listen(workCtx, st.DatabaseURL, parts, st.clock) })
		} else {
			work.Go(func() { hub.Poll(workCtx, pools.admin, time.Second, st.DB.AdminTimeout, parts, st.clock) })
		}
	}
	deps.Console = console.New(console.Deps{
		DB: pools.admin, DBTimeout: st.DB.AdminTimeout, Logger: logger, AdminKey: st.AdminAPIKey, Hub: hub, Doorbell: deps.Doorbell,
		Clock: st.clock, Supabase: console.NewSupabase(st.supabase, nil, st.clock.Now),
	})

	srv := &http.Server{
		Handler:           server.New(deps),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(deps.Console.EndStreams)
	ln := st.listener
	if ln == nil {
		if ln, err = listen(st.Port); err != nil {
			return err
		}
	}
	defer ln.Close()
	// The metrics address is bound before the public port answers, so a
	// replica that answers /healthz can be scraped.
	stopMetrics, err := serveMetrics(st.Edge, deps.Metrics, logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	logger.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	stop := func() error {
		logger.Info("shutting down: finishing in-flight requests, then deliveries")
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		err := srv.Shutdown(shutdownCtx)
		stopWork()
		work.Wait()
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}
	if err := waitForDatabase(ctx, pools.intake, st.DB.WaitTimeout, logger, databaseUp); err != nil {
		return errors.Join(err, stop())
	}
	if ctx.Err() != nil {
		return stop()
	}
	startLive()
	if startWork != nil {
		if err := startWork(); err != nil {
			return errors.Join(err, stop())
		}
	}

	select {
	case err := <-errc:
		return errors.Join(fmt.Errorf("serve: %w", err), stop())
	case <-ctx.Done():
	}
	return stop()
}

// waitForDatabase pings db until it answers, backing off from 250ms to 5s
// between tries, and gives up after timeout (0: never) or when ctx ends. It
// logs the wait once and the database's arrival once, and tells Health.
func waitForDatabase(ctx context.Context, db *pgxpool.Pool, timeout time.Duration, logger *slog.Logger, report health.Report) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	backoff := 250 * time.Millisecond
	for waited := false; ; waited = true {
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.Ping(pingCtx)
		cancel()
		if err == nil {
			if waited {
				logger.Info("the database answers; starting")
			}
			report(nil)
			return nil
		}
		report(fmt.Errorf("waiting for the database: %w", err))
		if !waited {
			logger.Warn("the database does not answer; waiting for it (/healthz answers, /readyz says 503)", "err", err, "give_up_after", timeout.String())
		}
		logger.Debug("the database does not answer yet", "retry_in", backoff)
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("the database at DATABASE_URL did not answer within DB_WAIT_TIMEOUT (%s): %w", timeout, err)
			}
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// replay queues failed deliveries again: one event's (eventID), or every
// failed one (eventID empty).
func replay(ctx context.Context, url string, eventID string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pool, err := openPool(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := outbox.New(pool)
	if eventID == "" {
		events, channels, err := store.ReplayFailed(ctx, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "queued %d failed channel(s) of %d event(s) again\n", channels, events)
		return nil
	}
	n, err := store.Replay(ctx, eventID, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "queued %d failed channel(s) of event %s again\n", n, eventID)
	return nil
}

// openPool connects to the database, for one-off commands, within the
// default session bounds. Through Supabase's pooler in transaction mode, add
// default_query_exec_mode=exec to the URL.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := newPool(url, "command", 2, sessionBounds(config.DefaultDBSettings))
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("the database at DATABASE_URL does not answer: %w", err)
	}
	return pool, nil
}

// dbPools are a replica's connection pools: one per part, so no part can
// take the connections another needs (the intake above all).
type dbPools struct {
	intake, dispatch, sla *pgxpool.Pool
	admin                 *pgxpool.Pool // the admin console's pages and the JSON admin API
	metrics               *pgxpool.Pool // /metrics' database figures
}

// openPools makes the pools; they connect lazily, so this works while the
// database is away. The SLA pool's sessions end an idle transaction within
// the SLA lease: a paused leader's job can then hold its successor off for
// one lease at most.
func openPools(url string, db config.DBSettings, slaLease time.Duration) (*dbPools, error) {
	common := sessionBounds(db)
	slaBounds := common
	slaBounds.statement = shorter(common.statement, slaLease)
	slaBounds.lock = shorter(common.lock, slaLease/3)
	slaBounds.idleInTransaction = shorter(common.idleInTransaction, slaLease)
	var p dbPools
	for _, pool := range []struct {
		dst   **pgxpool.Pool
		part  string
		conns int32
		b     bounds
	}{
		{&p.intake, "intake", db.IntakeConns, common},
		{&p.dispatch, "dispatch", db.DispatchConns, common},
		{&p.sla, "sla", db.SLAConns, slaBounds},
		{&p.admin, "admin", db.AdminConns, common},
		{&p.metrics, "metrics", db.MetricsConns, common},
	} {
		var err error
		if *pool.dst, err = newPool(url, pool.part, pool.conns, pool.b); err != nil {
			p.close()
			return nil, err
		}
	}
	return &p, nil
}

func (p *dbPools) close() {
	for _, pool := range []*pgxpool.Pool{p.intake, p.dispatch, p.sla, p.admin, p.metrics} {
		if pool != nil {
			pool.Close()
		}
	}
}

// bounds are the limits a pool's sessions run under (0: the server's own).
type bounds struct {
	statement, lock, idleInTransaction time.Duration
}

func sessionBounds(db config.DBSettings) bounds {
	return bounds{statement: db.StatementTimeout, lock: db.LockTimeout, idleInTransaction: db.IdleInTransactionTimeout}
}

// shorter is the shorter of a bound and a limit; an absent bound stays absent.
func shorter(bound, limit time.Duration) time.Duration {
	if bound == 0 || limit <= 0 {
		return bound
	}
	return max(min(bound, limit), time.Millisecond)
}

// newPool returns a pool of at most conns connections to url, named for its
// part (application_name, as pg_stat_activity shows), whose sessions run
// under b. Settings the URL names itself are kept. A pooler in transaction
// mode that refuses these startup settings needs them set to 0.
func newPool(url, part string, conns int32, b bounds) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.MaxConns = conns
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	params := cfg.ConnConfig.RuntimeParams
	set := func(name, value string) {
		if _, named := params[name]; !named && value != "" {
			params[name] = value
		}
	}
	ms := func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return strconv.FormatInt(d.Milliseconds(), 10)
	}
	set("application_name", "leadrelay "+part)
	set("statement_timeout", ms(b.statement))
	set("lock_timeout", ms(b.lock))
	set("idle_in_transaction_session_timeout", ms(b.idleInTransaction))
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return pool, nil
}

// dev is `make run`: an embedded Postgres (unless DATABASE_URL is set),
// migrated and seeded with demo data, and the service on it.
func dev(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	embedded := getenv("DATABASE_URL") == ""
	// Settings first, so a bad value stops us before a database starts; the
	// embedded server's URL is known only once it runs.
	st, err := loadSettings(func(k string) string {
		if k == "DATABASE_URL" && embedded {
			return "postgres://embedded"
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	// The port next, so nothing starts when it is taken.
	if st.listener, err = listen(st.Port); err != nil {
		return err
	}
	defer st.listener.Close()
	// make run's console: a fresh admin key unless ADMIN_API_KEY names one.
	if st.AdminAPIKey == "" {
		st.AdminAPIKey = "dev-" + rand.Text()
	}
	// make run's alerts: on this terminal when no channel is configured.
	st.printAlerts = true
	if embedded {
		fmt.Fprintln(stdout, "starting an embedded PostgreSQL from this machine's binaries...")
		pg, err := devpostgres.Start(ctx, devpostgres.Options{})
		if err != nil {
			return fmt.Errorf("embedded postgres: %w", err)
		}
		defer pg.Stop()
		st.DatabaseURL = pg.URL
		fmt.Fprintf(stdout, "embedded PostgreSQL: psql '%s'\n", pg.URL)
	}
	if err := migrateDB(ctx, st.DatabaseURL, stdout); err != nil {
		return err
	}
	if err := seed(ctx, st.DatabaseURL, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving on http://localhost:%d (Ctrl-C stops)\n", st.Port)
	fmt.Fprintf(stdout, "admin console: http://localhost:%d/admin, sign in with the admin key %s\n", st.Port, st.AdminAPIKey)
	return serve(ctx, st, newLogger(stderr, st.LogLevel, true), stdout)
}

// seed loads supabase/seed.sql into a database that has no leads yet.
func seed(ctx context.Context, url string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("seed: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var empty bool
	if err := conn.QueryRow(ctx, "select not exists (select from public.conversations)").Scan(&empty); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if !empty {
		return nil
	}
	body, err := supabase.FS.ReadFile("seed.sql")
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Conn().PgConn().Exec(ctx, string(body)).ReadAll()
		return err
	}); err != nil {
		return fmt.Errorf("seed.sql: %w", err)
	}
	fmt.Fprintln(stdout, "loaded demo data from supabase/seed.sql")
	return nil
}

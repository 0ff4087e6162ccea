package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/config"
)

var serveCommand = command{
	name:    "serve",
	summary: "run the HTTP service and deliver notifications (reads DATABASE_URL, PORT, ...)",
	details: `Serves the intake, the webhook receiver, the admin API, /healthz, /readyz and
/metrics on PORT, delivers the outbox to the configured channels and campaigns
for the SLA leader lease. With no channel configured it delivers nothing: it
warns, and alerts wait in the outbox for a replica that has a channel. SIGTERM
or Ctrl-C: in-flight requests and deliveries finish, claims and the lease are
released, then it exits 0.`,
	setup: func(*flag.FlagSet) func(context.Context, cli, []string) error {
		return noArgs(func(ctx context.Context, c cli) error {
			st, err := loadSettings(c.getenv)
			if err != nil {
				return err
			}
			if st.listener, err = listen(st.Port); err != nil {
				return err
			}
			return serve(ctx, st, newLogger(c.stderr, st.LogLevel, false), c.stdout)
		})
	},
}

var migrateCommand = command{
	name:    "migrate",
	summary: "bring the database at DATABASE_URL up to date (bootstrap, migrations, functions)",
	details: `Needs a direct or session-mode connection (Supabase: port 5432): it holds an
advisory lock, so replicas migrating at once wait for each other.`,
	setup: func(*flag.FlagSet) func(context.Context, cli, []string) error {
		return noArgs(func(ctx context.Context, c cli) error {
			url, err := databaseURL(c.getenv)
			if err != nil {
				return err
			}
			return migrateDB(ctx, url, c.stdout)
		})
	},
}

var replayCommand = command{
	name:     "replay",
	synopsis: "<event-id> | --failed",
	summary:  "send an event's failed channels again, or every failed delivery",
	details: `The deliveries get a fresh set of attempts; a running service sends them
within its sweep interval (NOTIFY_SWEEP_INTERVAL).`,
	setup: func(fs *flag.FlagSet) func(context.Context, cli, []string) error {
		failed := fs.Bool("failed", false, "replay every failed delivery of every event")
		return func(ctx context.Context, c cli, args []string) error {
			var eventID string
			switch {
			case *failed && len(args) == 0:
			case *failed:
				return usageErrorf("give an event id or --failed, not both")
			case len(args) != 1:
				return usageErrorf("give one event id or --failed")
			default:
				id, err := uuid.Parse(args[0])
				if err != nil {
					return usageErrorf("%q is not an event id (a UUID such as 0da2626d-5c1e-4f4a-9d43-4a3b7c2e8f10)", args[0])
				}
				eventID = id.String()
			}
			url, err := databaseURL(c.getenv)
			if err != nil {
				return err
			}
			return replay(ctx, url, eventID, c.stdout)
		}
	},
}

var devCommand = command{
	name:    "dev",
	summary: "what `make run` runs: the service on an embedded, migrated PostgreSQL with demo data",

	details: `Starts an embedded PostgreSQL unless DATABASE_URL is set, migrates it, loads
supabase/seed.sql into an empty database and serves on PORT (default 8080).
The embedded server runs from this machine's PostgreSQL binaries (as an
unprivileged user when you are root) and is removed on Ctrl-C. With no channel
configured, alerts are printed here (serve would leave them in the outbox).
The admin API and console take a key made for the run, printed at start,
unless ADMIN_API_KEY (16+ characters) names one.`,
	setup: func(*flag.FlagSet) func(context.Context, cli, []string) error {
		return noArgs(func(ctx context.Context, c cli) error {
			return dev(ctx, c.getenv, c.stdout, c.stderr)
		})
	},
}

// databaseURL is DATABASE_URL, for the commands that need nothing else.
func databaseURL(getenv func(string) string) (string, error) {
	url := getenv("DATABASE_URL")
	if url == "" {
		_, err := config.Load(getenv) // its message says what to set
		return "", err
	}
	return url, nil
}

// listen opens the HTTP port, naming the problem when it is taken.
func listen(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("port %d is already in use (another leadrelay or `make run`?): stop it, or set PORT to a free port, e.g. PORT=8081 make run", port)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on PORT %d: %w", port, err)
	}
	return ln, nil
}

// connectDB opens one connection to url, within 15 seconds, naming
// DATABASE_URL (without its password) when that fails.
func connectDB(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the database at DATABASE_URL (%s): %w", describeDB(cfg), err)
	}
	return conn, nil
}

// describeDB names a database without its password: user@host:port/name.
func describeDB(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s/%s", cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), cfg.Database)
}

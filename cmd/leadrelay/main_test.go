package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// wantAll reports each of wants that what's output out lacks.
func wantAll(t testing.TB, what, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, out)
		}
	}
}

// startServe runs `leadrelay serve` in-process and returns its base URL and
// a function that stops it and returns run's error.
func startServe(t testing.TB, databaseURL string) (string, func() error) {
	t.Helper()
	return startServeEnv(t, map[string]string{"DATABASE_URL": databaseURL})
}

// startServeEnv is startServe with the environment vars (PORT is added).
func startServeEnv(t testing.TB, vars map[string]string) (string, func() error) {
	t.Helper()
	return startServeOn(t, freePort(t), vars)
}

// startServeOn is startServeEnv on a given port.
func startServeOn(t testing.TB, port int, vars map[string]string) (string, func() error) {
	t.Helper()
	r := serveOn(t, port, vars)
	waitHealthy(t, r.base+"/healthz", http.StatusOK, r.done)
	return r.base, r.stop
}

// served is a `leadrelay serve` running in-process.
type served struct {
	base string
	logs *testkit.Buffer // what it logs
	done chan error      // run's error, once it returns
	stop func() error    // ends it and returns run's error
}

// serveOn runs `leadrelay serve` in-process on port with the environment
// vars (PORT is added), without waiting for it. It stops when the test
// ends, failing the test if run fails; its log is shown if the test failed.
func serveOn(t testing.TB, port int, vars map[string]string) served {
	t.Helper()
	return serveOnClock(t, port, vars, nil)
}

// serveOnClock is serveOn with the clock every part of serve reads (nil:
// the real one, through the command line as serveOn).
func serveOnClock(t testing.TB, port int, vars map[string]string, clock clockwork.Clock) served {
	t.Helper()
	vars["PORT"] = fmt.Sprint(port)
	vars["DATABASE_URL"] = patientURL(vars["DATABASE_URL"])
	ctx, cancel := context.WithCancel(context.Background())
	r := served{base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: &testkit.Buffer{}, done: make(chan error, 1)}
	go func() {
		if clock == nil {
			r.done <- run(ctx, []string{"leadrelay", "serve"}, env(vars), &testkit.Buffer{}, r.logs)
			return
		}
		st, err := loadSettingsOn(env(vars), clock)
		if err != nil {
			r.done <- err
			return
		}
		r.done <- serve(ctx, st, newLogger(r.logs, st.LogLevel, false), io.Discard)
	}()
	r.stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-r.done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("serve did not stop within 30s")
		}
	})
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve's log:\n%s", r.logs.String())
		}
	})
	return r
}

// patientURL is the database URL url with connect_timeout=60 unless it names one: serve's
// pools give a new connection 5s by default, which a loaded machine's PostgreSQL has taken
// (an admin request on a cold pool answered 503 after 5s at load 14), and no test here is
// about that bound.
func patientURL(url string) string {
	switch {
	case url == "" || strings.Contains(url, "connect_timeout="):
		return url
	case !strings.HasPrefix(url, "postgres://") && !strings.HasPrefix(url, "postgresql://"):
		return url + " connect_timeout=60" // keyword=value form
	case strings.Contains(url, "?"):
		return url + "&connect_timeout=60"
	default:
		return url + "?connect_timeout=60"
	}
}

// wait bounds every wait of these tests for the program to do something.
const wait = 30 * time.Second

// waitHealthy waits until url answers want, failing when the program exits.
func waitHealthy(t testing.TB, url string, want int, done chan error) {
	t.Helper()
	waitAnswer(t, url, want, done)
}

// waitAnswer waits until url answers want and returns the body; it fails
// when the program exits first (done may be nil).
func waitAnswer(t testing.TB, url string, want int, done chan error) string {
	t.Helper()
	var body []byte
	testkit.WaitFor(t, wait, fmt.Sprintf("%s to answer %d", url, want), func() (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("serve exited: %v", err)
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil // not listening yet
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil {
			return false, nil // cut short; ask again
		}
		return resp.StatusCode == want, nil
	})
	return string(body)
}

func status(t *testing.T, url string) int {
	t.Helper()
	code, _ := get(t, url)
	return code
}

// get answers a GET of url with its status and body.
func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestServeIsReadyOnAMigratedDatabase(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, dbtest.NewURL(t))
	// Ready once every background part has started and reported.
	waitAnswer(t, base+"/readyz", http.StatusOK, nil)
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v on shutdown", err)
	}
}

func TestReadyzWaitsForMigrations(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	base, _ := startServe(t, url)
	if got := status(t, base+"/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before migrate = %d, want 503", got)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"leadrelay", "migrate"}, env(map[string]string{"DATABASE_URL": url}), &out, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "bootstrapped") {
		t.Errorf("migrate output does not say it bootstrapped plain Postgres:\n%s", out.String())
	}
	// The background parts that failed on the empty database recover
	// within a sweep.
	waitAnswer(t, base+"/readyz", http.StatusOK, nil)
}

func TestBadConfigurationStopsStartUp(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"leadrelay", "serve"}, env(map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x", "PORT": "http"}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "PORT") {
		t.Fatalf("err = %v, want one naming PORT", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"leadrelay", "frobnicate"}, env(nil), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "usage") {
		t.Fatalf("err = %v, stderr = %q", err, stderr.String())
	}
}

// `leadrelay dev` (make run) checks its settings before it starts a database.
func TestDevRefusesBadSettingsBeforeStarting(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"leadrelay", "dev"}, env(map[string]string{"NOTIFY_RETRY_DELAYS": "soon"}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "NOTIFY_RETRY_DELAYS") {
		t.Fatalf("err = %v, want one naming NOTIFY_RETRY_DELAYS", err)
	}
	if strings.Contains(out.String(), "starting an embedded PostgreSQL") {
		t.Errorf("a database was started before the settings were checked:\n%s", out.String())
	}
}

// `leadrelay dev` with no DATABASE_URL, what `make run` runs on a fresh machine: it starts a
// PostgreSQL of its own from the machine's binaries (as an unprivileged user under root),
// migrates it, loads the demo data, prints how to reach it and the console's key, and
// serves; a lead posted is saved there; Ctrl-C stops it all, its PostgreSQL with it.
func TestDevRunsOnAnEmbeddedPostgreSQL(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	dev := startDev(t, port, map[string]string{})
	waitHealthy(t, dev.base+"/readyz", http.StatusOK, dev.done)
	out := dev.stdout.String()
	wantAll(t, "dev's output", out, "starting an embedded PostgreSQL", "loaded demo data from supabase/seed.sql",
		fmt.Sprintf("admin console: http://localhost:%d/admin, sign in with the admin key dev-", port))
	m := regexp.MustCompile(`embedded PostgreSQL: psql '([^']+)'`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("dev printed no psql URL:\n%s", out)
	}
	id := postLead(t, dev.base, "Embedded Lead")
	conn, err := pgx.Connect(testkit.Context(t), m[1])
	if err != nil {
		t.Fatalf("the printed URL: %v", err)
	}
	var demo, saved int
	err = conn.QueryRow(testkit.Context(t), `select (select count(*) from conversations where id <> $1),
		(select count(*) from conversations where id = $1 and name = 'Embedded Lead')`, id).Scan(&demo, &saved)
	conn.Close(context.Background())
	if err != nil || demo == 0 || saved != 1 {
		t.Fatalf("embedded database: %d demo leads, %d saved lead, err %v; want some and 1", demo, saved, err)
	}

	if err := dev.stop(); err != nil {
		t.Fatalf("dev: %v\n%s", err, dev.stderr.String())
	}
	if conn, err := pgx.Connect(testkit.Context(t), m[1]); err == nil {
		conn.Close(context.Background())
		t.Fatal("the embedded PostgreSQL still answers after Ctrl-C")
	}
}

// devRun is a `leadrelay dev` running in the test, on a port of its own.
type devRun struct {
	base           string
	stdout, stderr testkit.Buffer
	done           chan error
	stop           func() error // Ctrl-C: cancels the run and returns its error
}

// startDev runs `leadrelay dev` with vars (and PORT) until the test ends or stop is called.
func startDev(t *testing.T, port int, vars map[string]string) *devRun {
	t.Helper()
	vars["PORT"] = fmt.Sprint(port)
	d := &devRun{base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { d.done <- run(ctx, []string{"leadrelay", "dev"}, env(vars), &d.stdout, &d.stderr) }()
	var once sync.Once
	var err error
	d.stop = func() error {
		once.Do(func() {
			cancel()
			err = <-d.done
		})
		return err
	}
	t.Cleanup(func() { _ = d.stop() })
	return d
}

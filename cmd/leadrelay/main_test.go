package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dbtest"
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

// connect opens a connection to url, closed when the test ends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// syncBuffer is a bytes.Buffer safe for the program and the test at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count is how many times s occurs so far.
func (b *syncBuffer) count(s string) int { return strings.Count(b.String(), s) }

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
	vars["PORT"] = fmt.Sprint(port)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"leadrelay", "serve"}, env(vars), &syncBuffer{}, &stderr)
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("serve did not stop within 30s")
		}
	})
	t.Cleanup(func() { _ = stop() })
	waitFor(t, base+"/healthz", http.StatusOK, done, &stderr)
	return base, stop
}

// waitFor polls url until it answers want, the program exits, or 20s pass.
func waitFor(t testing.TB, url string, want int, done chan error, stderr *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d within 20s (last error %v)\n%s", url, want, err, stderr.String())
		}
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeIsReadyOnAMigratedDatabase(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, dbtest.NewURL(t))
	// Ready once every background part has started and reported.
	waitForBody(t, base+"/readyz", http.StatusOK)
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
	waitForBody(t, base+"/readyz", http.StatusOK)
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

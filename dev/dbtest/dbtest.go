// Package dbtest gives each test a fresh, fully migrated database of its own,
// cloned from a template that is migrated once per schema version, so a test
// pays for a CREATE DATABASE, not for a migrate.
//
// The server is the one named by TEST_DATABASE_URL (a URL whose user may
// create databases), by default postgres://postgres@127.0.0.1:5432/postgres.
// `make test` sets it, starting a throwaway server when none is reachable.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/database/migrate"
	"github.com/truenester/leadrelay/supabase"
)

const defaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// templateLock serialises template builds across the test binaries that
// `go test ./...` runs at once.
const templateLock int64 = 0x6c72_7465_6d70 // "lrtemp"

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// AdminURL is the URL of the server's maintenance database.
func AdminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultURL
}

// NewURL creates a fresh migrated database, dropped when the test ends, and
// returns its URL.
func NewURL(t testing.TB) string {
	t.Helper()
	templateOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		templateName, templateErr = ensureTemplate(ctx)
	})
	if templateErr != nil {
		t.Fatalf("dbtest: template database: %v", templateErr)
	}
	return create(t, "template "+templateName)
}

// EmptyURL creates an empty database (not migrated), dropped when the test
// ends, and returns its URL: for tests of the migrator itself.
func EmptyURL(t testing.TB) string {
	t.Helper()
	return create(t, "")
}

func create(t testing.TB, options string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("dbtest: connect to %s: %v (set TEST_DATABASE_URL, or run `make test`, which starts a server)", redact(AdminURL()), err)
	}
	defer admin.Close(ctx)

	name := "leadrelay_test_" + randomSuffix()
	if _, err := admin.Exec(ctx, "create database "+name+" "+options); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, name) })
	return withDatabase(t, AdminURL(), name)
}

// New creates a fresh migrated database and returns a pool on it; the pool
// is closed and the database dropped when the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NewURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("dbtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close) // registered after the drop, so it runs first
	return pool
}

func dropDatabase(t testing.TB, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Errorf("dbtest: drop %s: %v", name, err)
		return
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "drop database if exists "+name+" with (force)"); err != nil {
		t.Errorf("dbtest: drop %s: %v", name, err)
	}
}

// ensureTemplate returns the name of a template database migrated to the
// embedded schema, building it when no binary has yet. The name carries a
// hash of the SQL, so a changed migration gets a new template.
func ensureTemplate(ctx context.Context) (string, error) {
	sum, err := schemaHash(supabase.FS)
	if err != nil {
		return "", err
	}
	name := "leadrelay_template_" + sum
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w (set TEST_DATABASE_URL, or run `make test`, which starts a server)", redact(AdminURL()), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "select pg_advisory_lock($1)", templateLock); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), "select pg_advisory_unlock($1)", templateLock)

	var exists bool
	if err := admin.QueryRow(ctx, "select exists (select from pg_database where datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for %s: %w", name, err)
	}
	if exists {
		return name, nil
	}
	// Build under a scratch name and rename at the end, so a half-built
	// template is never taken for a whole one.
	building := name + "_building"
	if _, err := admin.Exec(ctx, "drop database if exists "+building+" with (force)"); err != nil {
		return "", fmt.Errorf("drop leftover %s: %w", building, err)
	}
	if _, err := admin.Exec(ctx, "create database "+building); err != nil {
		return "", fmt.Errorf("create %s: %w", building, err)
	}
	buildURL, err := withDatabaseURL(AdminURL(), building)
	if err != nil {
		return "", err
	}
	if _, err := migrate.RunURL(ctx, buildURL, supabase.FS); err != nil {
		return "", fmt.Errorf("migrate %s: %w", building, err)
	}
	for _, stmt := range []string{
		"alter database " + building + " rename to " + name,
		"alter database " + name + " is_template true",
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return name, nil
}

func schemaHash(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(body))
		h.Write(body)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash schema: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func withDatabase(t testing.TB, rawURL, name string) string {
	t.Helper()
	u, err := withDatabaseURL(rawURL, name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return u
}

// withDatabaseURL returns the connection string rawURL pointed at database
// name; both URL and keyword=value forms are accepted. TEST_QUERY_EXEC_MODE
// (e.g. exec, as behind Supabase's transaction pooler) sets pgx's
// default_query_exec_mode on it, so a suite can prove its queries in that mode.
func withDatabaseURL(rawURL, name string) (string, error) {
	mode := os.Getenv("TEST_QUERY_EXEC_MODE")
	if !strings.HasPrefix(rawURL, "postgres://") && !strings.HasPrefix(rawURL, "postgresql://") {
		dsn := rawURL + " dbname=" + name
		if mode != "" {
			dsn += " default_query_exec_mode=" + mode
		}
		return dsn, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	if mode != "" {
		q := u.Query()
		q.Set("default_query_exec_mode", mode)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// redact hides a password in a connection string for messages.
func redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	return rawURL
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

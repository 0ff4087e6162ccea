package dberr_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/database/dberr"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// Each kind as a real server reports it.
func TestInterpretNamesEachKind(t *testing.T) {
	t.Parallel()
	conn := testkit.Connect(t, dbtest.NewURL(t))
	ctx := testkit.Context(t)
	for _, c := range []struct {
		sql    string
		kind   error
		status int
	}{
		{"select 1 where false", dberr.ErrNotFound, 0},
		{"do $$ begin raise no_data_found; end $$", dberr.ErrNotFound, 0},
		{"select 1/0", dberr.ErrInvalid, 0},
		{"select 'not a uuid'::uuid", dberr.ErrInvalid, 0},
		{"do $$ begin raise exception 'invalid lead' using errcode = '22023', detail = '{\"email\": \"bad\"}'; end $$", dberr.ErrInvalid, 0},
		{"select * from no_such_table", dberr.ErrUndefinedTable, 0},
		{"do $$ begin raise exception 'reused' using errcode = 'PT422'; end $$", dberr.ErrRefused, 422},
		{"do $$ begin raise exception 'limit' using errcode = '2200H'; end $$", dberr.ErrUnavailable, 0},
		{"do $$ begin raise exception 'deadlock' using errcode = '40P01'; end $$", dberr.ErrUnavailable, 0},
		{"do $$ begin raise exception 'too many' using errcode = '53300'; end $$", dberr.ErrUnavailable, 0},
		{"do $$ begin raise foreign_key_violation; end $$", dberr.ErrForeignKey, 0},
		{"do $$ begin raise check_violation; end $$", dberr.ErrCheck, 0},
		{"do $$ begin raise insufficient_privilege; end $$", dberr.ErrForbidden, 0},
		{"do $$ begin raise unique_violation; end $$", nil, 0},
	} {
		var n int
		err := dberr.Interpret(conn.QueryRow(ctx, c.sql).Scan(&n))
		e := dberr.Of(err)
		switch {
		case e == nil:
			t.Errorf("%s: %v is not a *dberr.Error", c.sql, err)
		case e.Kind != c.kind || (c.kind != nil && !errors.Is(err, c.kind)):
			t.Errorf("%s: kind %v, want %v (%v)", c.sql, e.Kind, c.kind, err)
		case e.HTTPStatus != c.status:
			t.Errorf("%s: HTTP status %d, want %d", c.sql, e.HTTPStatus, c.status)
		}
	}
	if err := dberr.Interpret(conn.QueryRow(ctx, "select 'invalid lead'").Scan(new(string))); err != nil {
		t.Errorf("a success is %v", err)
	}
}

// A server that does not answer is unavailable, as is a statement cut by
// its timeout, or by its lock timeout while another transaction holds a row
// it must lock.
func TestInterpretUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	conn := testkit.Connect(t, dbtest.NewURL(t))
	if _, err := conn.Exec(ctx, "set statement_timeout = '10ms'"); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, "select pg_sleep(1)")
	if err := dberr.Interpret(err); !errors.Is(err, dberr.ErrUnavailable) {
		t.Errorf("statement timeout: %v, want ErrUnavailable", err)
	}
	holder := testkit.Connect(t, conn.Config().ConnString())
	if _, err := holder.Exec(ctx, "create table locked (id int primary key); insert into locked values (1)"); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "select id from locked for update"); err != nil {
		t.Fatal(err)
	}
	// A connection of its own: conn's 10ms statement timeout would bound any statement that
	// turned it off again, and a loaded machine's took longer.
	waiter := testkit.Connect(t, conn.Config().ConnString())
	if _, err := waiter.Exec(ctx, "set lock_timeout = '10ms'"); err != nil {
		t.Fatal(err)
	}
	_, err = waiter.Exec(ctx, "update locked set id = 2")
	if e := dberr.Of(dberr.Interpret(err)); e == nil || e.Code != "55P03" || !errors.Is(e, dberr.ErrUnavailable) {
		t.Errorf("lock timeout: %v, want 55P03 as ErrUnavailable", err)
	}
	_, err = pgx.Connect(ctx, "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err := dberr.Interpret(err); !errors.Is(err, dberr.ErrUnavailable) {
		t.Errorf("no server: %v, want ErrUnavailable", err)
	}
}

// A connection lost, or closed, while a call runs or before it is made is the
// database away, however pgx reports it: a query cut mid-flight (here while the
// server sleeps in it), through the extended protocol (io.ErrUnexpectedEOF) or
// the simple one (the connection closed), a call on a connection pgx has closed,
// a pool closed, a pool with no connection free until the caller's deadline.
func TestInterpretALostConnectionIsUnavailable(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	url := dbtest.NewURL(t)
	watch := testkit.Connect(t, url)
	unavailable := func(what string, err error) {
		t.Helper()
		if e := dberr.Of(dberr.Interpret(err)); e == nil || e.Kind != dberr.ErrUnavailable {
			t.Errorf("%s: %v (%T), want ErrUnavailable", what, err, err)
		}
	}
	for _, c := range []struct {
		what string
		call func(ctx context.Context, conn *pgx.Conn) error
	}{
		{"a query with an argument cut mid-flight", func(ctx context.Context, conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "select 1 from pg_sleep(600) where $1", true).Scan(new(int))
		}},
		{"a statement without arguments cut mid-flight", func(ctx context.Context, conn *pgx.Conn) error {
			_, err := conn.Exec(ctx, "select pg_sleep(600)")
			return err
		}},
	} {
		link := testkit.NewProxy(t, url)
		conn := testkit.Connect(t, link.URL)
		var pid int
		if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.call(ctx, conn) }()
		testkit.WaitForQuery(t, watch, 30*time.Second, "the server to sleep in "+c.what,
			"select exists (select from pg_stat_activity where pid = $1 and state = 'active' and query like '%pg_sleep(600)%')", pid)
		link.Cut()
		unavailable(c.what, <-done)
		_, err := conn.Exec(ctx, "select 1")
		unavailable("a call on the connection pgx closed", err)
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The pool's one connection stays held, so the deadline passes, however soon.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, err = pool.Exec(short, "select 1")
	cancel()
	unavailable("a pool with no connection free until the deadline", err)
	held.Release()
	pool.Close()
	_, err = pool.Exec(ctx, "select 1")
	unavailable("a closed pool", err)
}

// A failure of ours without the server's answer has no kind, so the edges
// answer 500 and log it as the service's fault, not 503 with Retry-After: a
// column scanned into the wrong Go type, a JSON column decoded into one, a
// connection used by two calls at once.
func TestInterpretAFaultOfOursHasNoKind(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	conn := testkit.Connect(t, dbtest.NewURL(t))
	busy, err := conn.Query(ctx, "select 1")
	if err != nil {
		t.Fatal(err)
	}
	busyErr := conn.QueryRow(ctx, "select 2").Scan(new(int))
	busy.Close()
	for what, err := range map[string]error{
		"text into an int":                    conn.QueryRow(ctx, "select 'x'::text").Scan(new(int)),
		"a jsonb object into an int":          conn.QueryRow(ctx, `select '{"a": 1}'::jsonb`).Scan(new(int)),
		"a call while another reads its rows": busyErr,
	} {
		e := dberr.Of(dberr.Interpret(err))
		switch {
		case err == nil:
			t.Errorf("%s: no error", what)
		case e == nil:
			t.Errorf("%s: %v is not a *dberr.Error", what, err)
		case e.Kind != nil:
			t.Errorf("%s: kind %v, want none (%v)", what, e.Kind, err)
		}
	}
}

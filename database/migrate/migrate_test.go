package migrate_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/database/migrate"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/supabase"
)

// A small project: a bootstrap that counts its runs, two migrations, a function.
func testFS() fstest.MapFS {
	return fstest.MapFS{
		"bootstrap.sql": {Data: []byte(`create schema if not exists auth;
create or replace function auth.jwt() returns jsonb language sql as $$ select '{}'::jsonb $$;
create table if not exists public.bootstrap_runs (at timestamptz default now());
insert into public.bootstrap_runs default values;`)},
		"migrations/20260101000000_first.sql":  {Data: []byte("create table a (id int primary key);\n-- second\ninsert into a values (1);")},
		"migrations/20260102000000_second.sql": {Data: []byte("create table b (id int);\ninsert into b values (2);")},
		"functions-sql/10_f.sql":               {Data: []byte("create or replace function public.f() returns int language sql as $$ select count(*)::int from public.a $$;")},
	}
}

func history(t *testing.T, conn *pgx.Conn) map[string][]string {
	t.Helper()
	rows, _ := conn.Query(testkit.Context(t), "select version, name, statements from supabase_migrations.schema_migrations order by version")
	type migration struct {
		Version    string
		Name       string
		Statements []string
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[migration])
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, m := range list {
		got[m.Version+"_"+m.Name] = m.Statements
	}
	return got
}

func TestRunAppliesOnceAndRecordsLikeTheCLI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := testkit.Connect(t, dbtest.EmptyURL(t))
	fsys := testFS()

	rep, err := migrate.Run(ctx, conn, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Bootstrapped || !slices.Equal(rep.Applied, []string{"20260101000000", "20260102000000"}) || rep.Functions != 1 {
		t.Fatalf("first run: %+v", rep)
	}
	want := map[string][]string{
		"20260101000000_first":  {"create table a (id int primary key)", "-- second\ninsert into a values (1)"},
		"20260102000000_second": {"create table b (id int)", "insert into b values (2)"},
	}
	if got := history(t, conn); len(got) != 2 || !slices.Equal(got["20260101000000_first"], want["20260101000000_first"]) || !slices.Equal(got["20260102000000_second"], want["20260102000000_second"]) {
		t.Fatalf("history = %q, want %q", got, want)
	}

	rep, err = migrate.Run(ctx, conn, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bootstrapped || len(rep.Applied) != 0 {
		t.Fatalf("second run did something: %+v", rep)
	}
	var rowsA, runs, f int
	if err := conn.QueryRow(ctx, "select (select count(*) from a), (select count(*) from bootstrap_runs), public.f()").Scan(&rowsA, &runs, &f); err != nil {
		t.Fatal(err)
	}
	if rowsA != 1 || runs != 1 || f != 1 {
		t.Fatalf("after two runs: %d rows in a, %d bootstrap runs, f() = %d; want 1, 1, 1", rowsA, runs, f)
	}
}

func TestFailedMigrationLeavesDatabaseAsItWas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := testkit.Connect(t, dbtest.EmptyURL(t))
	fsys := testFS()
	fsys["migrations/20260103000000_broken.sql"] = &fstest.MapFile{Data: []byte("create table c (id int);\ninsert into c values ('not a number');\ncreate table d (id int);")}

	_, err := migrate.Run(ctx, conn, fsys)
	var stmtErr *migrate.StatementError
	if !errors.As(err, &stmtErr) {
		t.Fatalf("err = %v, want a StatementError", err)
	}
	if stmtErr.File != "migrations/20260103000000_broken.sql" || stmtErr.Index != 2 {
		t.Fatalf("error names %s statement %d, want the broken file's statement 2", stmtErr.File, stmtErr.Index)
	}
	if msg := err.Error(); !strings.Contains(msg, "20260103000000_broken.sql: statement 2 (insert into c values ('not a number'))") {
		t.Fatalf("message %q does not name the file and statement", msg)
	}
	var c *string
	if err := conn.QueryRow(ctx, "select to_regclass('public.c')::text").Scan(&c); err != nil {
		t.Fatal(err)
	}
	if c != nil {
		t.Fatal("table c of the failed migration exists")
	}
	if h := history(t, conn); len(h) != 2 {
		t.Fatalf("history has %d versions, want the 2 good ones", len(h))
	}
}

func TestConcurrentRunsDoNotCollide(t *testing.T) {
	t.Parallel()
	url := dbtest.EmptyURL(t)
	fsys := testFS()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	applied := make(chan int, 3)
	for range 3 {
		conn := testkit.Connect(t, url)
		wg.Go(func() {
			rep, err := migrate.Run(context.Background(), conn, fsys)
			errs <- err
			applied <- len(rep.Applied)
		})
	}
	wg.Wait()
	close(errs)
	close(applied)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for n := range applied {
		total += n
	}
	if total != 2 {
		t.Fatalf("three concurrent runs applied %d migrations in all, want 2", total)
	}
}

func TestBadFileName(t *testing.T) {
	t.Parallel()
	fsys := testFS()
	fsys["migrations/schema.sql"] = &fstest.MapFile{Data: []byte("select 1;")}
	_, err := migrate.Migrations(fsys)
	if err == nil || !strings.Contains(err.Error(), "migrations/schema.sql") {
		t.Fatalf("err = %v, want one naming migrations/schema.sql", err)
	}
}

// The real schema migrates an empty database, and a second run changes nothing.
func TestProjectSchemaMigratesTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := testkit.Connect(t, dbtest.EmptyURL(t))
	first, err := migrate.Run(ctx, conn, supabase.FS)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Bootstrapped || len(first.Applied) == 0 {
		t.Fatalf("first run: %+v", first)
	}
	second, err := migrate.Run(ctx, conn, supabase.FS)
	if err != nil {
		t.Fatal(err)
	}
	if second.Bootstrapped || len(second.Applied) != 0 {
		t.Fatalf("second run did something: %+v", second)
	}
	pending, err := migrate.Pending(ctx, conn, supabase.FS)
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending = %v, %v", pending, err)
	}
}

// Package migrate brings a database up to the schema in supabase/: the
// plain-Postgres bootstrap where Supabase's roles and auth schema are missing,
// then every pending migration (each in one transaction, recorded in the
// Supabase CLI's own history table), then the SQL functions, re-applied every
// time so a function is edited in one place.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/database"
	"github.com/truenester/leadrelay/database/dberr"
)

// lockKey serialises migrators on one database (replicas starting together).
const lockKey int64 = 0x6c656164_72656c61 // "leadrela"

// The Supabase CLI creates and fills its history table with these statements;
// using the same ones lets `supabase db push` and `leadrelay migrate` take
// turns on one database without applying a file twice.
var historyDDL = []string{
	"CREATE SCHEMA IF NOT EXISTS supabase_migrations",
	"CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)",
	"ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]",
	"ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text",
}

const recordMigration = "INSERT INTO supabase_migrations.schema_migrations(version, name, statements) VALUES($1, $2, $3)"

var fileName = regexp.MustCompile(`^([0-9]+)_(.*)\.sql$`)

// Migration is one file of supabase/migrations.
type Migration struct {
	Version    string
	Name       string
	File       string
	Statements []string
}

// Report says what a run did.
type Report struct {
	Bootstrapped bool
	Applied      []string // versions applied by this run
	Functions    int      // functions-sql files applied
}

// Migrations reads supabase/migrations from fsys, in version order.
func Migrations(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations/%s: name must be <version>_<name>.sql, e.g. 20261124120000_schema.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migrations/%s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: m[1], Name: m[2], File: e.Name(), Statements: Split(string(body))})
	}
	slices.SortFunc(out, func(a, b Migration) int { return strings.Compare(a.Version, b.Version) })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share version %s", out[i-1].File, out[i].File, out[i].Version)
		}
	}
	return out, nil
}

// Run migrates the database conn is connected to. It needs a session of its
// own (a direct or session-mode connection): it holds an advisory lock for
// the whole run.
func Run(ctx context.Context, conn *pgx.Conn, fsys fs.FS) (Report, error) {
	var rep Report
	migrations, err := Migrations(fsys)
	if err != nil {
		return rep, err
	}
	if _, err := conn.Exec(ctx, "select pg_advisory_lock($1)", lockKey); err != nil {
		return rep, fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		// A failed unlock only matters while the session lives; closing it frees the lock.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "select pg_advisory_unlock($1)", lockKey)
	}()

	if rep.Bootstrapped, err = bootstrap(ctx, conn, fsys); err != nil {
		return rep, err
	}
	for _, stmt := range historyDDL {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return rep, fmt.Errorf("create migration history table: %w", err)
		}
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return rep, err
	}
	for _, m := range migrations {
		if applied[m.Version] {
			continue
		}
		if err := apply(ctx, conn, m); err != nil {
			return rep, err
		}
		rep.Applied = append(rep.Applied, m.Version)
	}
	if rep.Functions, err = applyFunctions(ctx, conn, fsys); err != nil {
		return rep, err
	}
	return rep, nil
}

// RunURL migrates the database at url over a connection of its own.
func RunURL(ctx context.Context, url string, fsys fs.FS) (Report, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return Report{}, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return Run(ctx, conn, fsys)
}

// Pending lists the migrations in fsys that the database has not recorded.
func Pending(ctx context.Context, q database.Querier, fsys fs.FS) ([]string, error) {
	migrations, err := Migrations(fsys)
	if err != nil {
		return nil, err
	}
	applied, err := appliedVersions(ctx, q)
	if err != nil {
		return nil, err
	}
	var pending []string
	for _, m := range migrations {
		if !applied[m.Version] {
			pending = append(pending, m.File)
		}
	}
	return pending, nil
}

func appliedVersions(ctx context.Context, q database.Querier) (map[string]bool, error) {
	rows, _ := q.Query(ctx, "select version from supabase_migrations.schema_migrations")
	versions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if errors.Is(dberr.Interpret(err), dberr.ErrUndefinedTable) { // no history table yet
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read migration history: %w", err)
	}
	applied := make(map[string]bool, len(versions))
	for _, v := range versions {
		applied[v] = true
	}
	return applied, nil
}

// bootstrap makes plain Postgres look like Supabase where the product needs
// it. On Supabase auth.jwt() exists and nothing is done.
func bootstrap(ctx context.Context, conn *pgx.Conn, fsys fs.FS) (bool, error) {
	var missing bool
	if err := conn.QueryRow(ctx, "select to_regprocedure('auth.jwt()') is null").Scan(&missing); err != nil {
		return false, fmt.Errorf("check for Supabase's auth schema: %w", err)
	}
	if !missing {
		return false, nil
	}
	body, err := fs.ReadFile(fsys, "bootstrap.sql")
	if err != nil {
		return false, fmt.Errorf("read bootstrap.sql: %w", err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		return execAll(ctx, tx, "bootstrap.sql", Split(string(body)))
	})
	return err == nil, err
}

func apply(ctx context.Context, conn *pgx.Conn, m Migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := execAll(ctx, tx, "migrations/"+m.File, m.Statements); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, recordMigration, m.Version, m.Name, m.Statements); err != nil {
			return fmt.Errorf("record migration %s: %w", m.File, err)
		}
		return nil
	})
}

// applyFunctions runs every functions-sql file, in name order, in one
// transaction: a broken function leaves the previous set in place.
func applyFunctions(ctx context.Context, conn *pgx.Conn, fsys fs.FS) (int, error) {
	names, err := fs.Glob(fsys, "functions-sql/*.sql")
	if err != nil {
		return 0, fmt.Errorf("list functions-sql: %w", err)
	}
	slices.Sort(names)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, name := range names {
			body, err := fs.ReadFile(fsys, name)
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			if err := execAll(ctx, tx, name, Split(string(body))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(names), nil
}

// execAll runs statements one at a time so that a failure names the file and
// the statement.
func execAll(ctx context.Context, tx pgx.Tx, file string, stmts []string) error {
	for i, stmt := range stmts {
		if _, err := tx.Conn().PgConn().Exec(ctx, stmt).ReadAll(); err != nil {
			return &StatementError{File: file, Index: i + 1, Statement: stmt, Err: err}
		}
	}
	return nil
}

// StatementError names the file and statement a migration failed at.
type StatementError struct {
	File      string
	Index     int // 1-based
	Statement string
	Err       error
}

func (e *StatementError) Error() string {
	return fmt.Sprintf("%s: statement %d (%s): %v", e.File, e.Index, summary(e.Statement), e.Err)
}

func (e *StatementError) Unwrap() error { return e.Err }

// summary is the statement's first line of code, shortened for a message.
func summary(stmt string) string {
	for _, line := range strings.Split(stmt, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "--") {
			continue
		}
		if len(line) > 80 {
			line = line[:77] + "..."
		}
		return line
	}
	return ""
}

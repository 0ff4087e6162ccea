package migrate_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/database/migrate"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/supabase"
)

// TestSupabaseCLICompatibility proves that the real Supabase CLI and our
// migrator take turns on one database: `supabase db push` applies our
// migrations onto a bootstrapped database, our migrator then finds nothing to
// apply, both record the same history, and Supabase's advisors find nothing
// at warning level. SUPABASE_CLI names the CLI binary (`make test` installs
// the pinned npm package when npm is present).
func TestSupabaseCLICompatibility(t *testing.T) {
	cli := os.Getenv("SUPABASE_CLI")
	if cli == "" {
		t.Skip("SUPABASE_CLI is not set (make test sets it when npm can install the CLI)")
	}
	t.Parallel()
	ctx := context.Background()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	// A: bootstrap by hand, then the CLI pushes, then our migrator runs.
	urlA := dbtest.EmptyURL(t)
	connA := testkit.Connect(t, urlA)
	bootstrap, err := supabase.FS.ReadFile("bootstrap.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := connA.PgConn().Exec(ctx, string(bootstrap)).ReadAll(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	supabaseCLI(t, cli, repo, "db", "push", "--db-url", urlA, "--yes")
	rep, err := migrate.Run(ctx, connA, supabase.FS)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Bootstrapped || len(rep.Applied) != 0 {
		t.Fatalf("after supabase db push our migrator applied %v (bootstrapped: %v); want nothing", rep.Applied, rep.Bootstrapped)
	}
	supabaseCLI(t, cli, repo, "db", "advisors", "--db-url", urlA, "--level", "warn", "--fail-on", "warn")

	// B: our migrator alone records exactly what the CLI recorded on A,
	// and the CLI then finds nothing to push.
	urlB := dbtest.EmptyURL(t)
	connB := testkit.Connect(t, urlB)
	if _, err := migrate.Run(ctx, connB, supabase.FS); err != nil {
		t.Fatal(err)
	}
	histA, histB := history(t, connA), history(t, connB)
	if len(histA) == 0 || len(histA) != len(histB) {
		t.Fatalf("CLI recorded %d migrations, we recorded %d", len(histA), len(histB))
	}
	for v, stmts := range histA {
		if !slices.Equal(stmts, histB[v]) {
			t.Errorf("migration %s: statements differ\nCLI: %q\nours: %q", v, stmts, histB[v])
		}
	}
	out := supabaseCLI(t, cli, repo, "db", "push", "--db-url", urlB, "--yes")
	if !strings.Contains(strings.ToLower(out), "up to date") {
		t.Errorf("supabase db push after our migrate did not say the database is up to date:\n%s", out)
	}
}

func supabaseCLI(t *testing.T, cli, workdir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, append(args, "--workdir", workdir)...)
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1", "SUPABASE_TELEMETRY_DISABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("supabase %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

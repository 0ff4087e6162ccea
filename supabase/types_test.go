package supabase_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// typesFile holds the TypeScript types of the API that TrueNester's panel uses through
// supabase-js (tables, views, the admin's functions, enums), as the Supabase CLI generates
// them from a migrated database.
const typesFile = "types/database.ts"

// TestGeneratedTypesAreCurrent regenerates the types with the pinned Supabase CLI
// (`supabase gen types typescript --db-url`, which needs no Docker) from a freshly migrated
// database and compares them with the checked-in file. UPDATE_TYPES=1 (`make types`)
// rewrites the file instead.
func TestGeneratedTypesAreCurrent(t *testing.T) {
	cli := os.Getenv("SUPABASE_CLI")
	if cli == "" {
		t.Skip("SUPABASE_CLI is not set (make test sets it when npm can install the CLI)")
	}
	t.Parallel()
	url := dbtest.NewURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "gen", "types", "typescript", "--db-url", url, "--schema", "public")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("supabase gen types: %v\n%s", err, stderr.String())
	}
	generated := stdout.Bytes()
	if !bytes.Contains(generated, []byte(`"admin_replay_event"`)) {
		t.Fatalf("the generated types lack the admin's functions:\n%.2000s", generated)
	}
	if os.Getenv("UPDATE_TYPES") == "1" {
		if err := os.WriteFile(typesFile, generated, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", typesFile)
		return
	}
	current, err := os.ReadFile(typesFile)
	if err != nil {
		t.Fatalf("%v (run `make types`)", err)
	}
	if !bytes.Equal(current, generated) {
		have, want := strings.Split(string(current), "\n"), strings.Split(string(generated), "\n")
		for i := 0; i < max(len(have), len(want)); i++ {
			var h, w string
			if i < len(have) {
				h = have[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if h != w {
				t.Fatalf("%s is out of date with the schema (run `make types`); first difference at line %d:\nchecked in: %s\ngenerated:  %s", typesFile, i+1, h, w)
			}
		}
	}
}

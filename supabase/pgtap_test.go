package supabase_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// TestPgTAP runs every supabase/tests/*.sql file, each in a fresh migrated
// database, and fails on any "not ok" line or a plan the file did not keep.
// The files are plain pgTAP, so `pg_prove` and `supabase test db` run them too.
func TestPgTAP(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("tests/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no pgTAP files in supabase/tests")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := runTAP(t, string(body))
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			checkTAP(t, lines)
		})
	}
}

func runTAP(t *testing.T, sql string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbtest.NewURL(t))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	var lines []string
	for _, res := range results {
		for _, row := range res.Rows {
			if len(row) > 0 {
				lines = append(lines, strings.Split(string(row[0]), "\n")...)
			}
		}
	}
	if err != nil {
		return lines, fmt.Errorf("%w\noutput so far:\n%s", err, strings.Join(lines, "\n"))
	}
	return lines, nil
}

var (
	planLine   = regexp.MustCompile(`^1\.\.(\d+)`)
	resultLine = regexp.MustCompile(`^(not )?ok \d+`)
)

func checkTAP(t *testing.T, lines []string) {
	t.Helper()
	planned, ran, failed := -1, 0, 0
	for i, line := range lines {
		if m := planLine.FindStringSubmatch(line); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				t.Fatalf("line %d: plan %q: %v", i+1, line, err)
			}
			planned = n
			continue
		}
		m := resultLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ran++
		if m[1] != "" && !strings.Contains(line, "# TODO") {
			failed++
			// The diagnostics that follow a failure explain it.
			msg := []string{line}
			for _, d := range lines[i+1:] {
				if !strings.HasPrefix(d, "#") {
					break
				}
				msg = append(msg, d)
			}
			t.Error(strings.Join(msg, "\n"))
		}
	}
	if planned < 0 {
		t.Errorf("no plan in the output:\n%s", strings.Join(lines, "\n"))
	} else if ran != planned {
		t.Errorf("planned %d tests, ran %d", planned, ran)
	}
	if failed == 0 && !t.Failed() {
		t.Logf("%d pgTAP tests passed", ran)
	}
}

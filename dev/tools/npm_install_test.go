// Package tools holds the scripts make runs; this tests them.
package tools

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With the npm registry unreachable, npm-install skips with one clear line,
// quickly, showing npm's own error; under CI=true it fails instead.
func TestNPMInstallSkipsWhenTheRegistryIsUnreachable(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("SKIPPED: npm is not installed")
	}
	script, err := filepath.Abs("npm-install")
	if err != nil {
		t.Fatal(err)
	}
	for _, ci := range []string{"", "true"} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, script, ".cache/supabase-cli", "supabase", "2.122.1")
		cmd.Dir = t.TempDir() // an empty .cache: nothing installed
		cmd.Env = append(os.Environ(), "npm_config_registry=http://127.0.0.1:1/", "CI="+ci)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		var exitErr *exec.ExitError
		switch {
		case ctx.Err() != nil:
			t.Fatalf("CI=%q: npm-install still ran after 60s\n%s", ci, stderr.String())
		case ci == "" && (err != nil || strings.TrimSpace(stdout.String()) != "skip: the npm registry (http://127.0.0.1:1/) cannot be reached"):
			t.Errorf("CI=%q: %v, stdout %q, want one skip line", ci, err, stdout.String())
		case ci == "true" && (!errors.As(err, &exitErr) || exitErr.ExitCode() != 1 || stdout.Len() > 0):
			t.Errorf("CI=true: %v, stdout %q, want exit 1", err, stdout.String())
		}
		if !strings.Contains(stderr.String(), "ECONNREFUSED") {
			t.Errorf("CI=%q: npm's own error is not shown:\n%s", ci, stderr.String())
		}
		t.Logf("CI=%q: %s", ci, took)
	}
}

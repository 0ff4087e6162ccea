package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// noEnv is an environment that fails the test when a setting is read: a
// command asked for help must not look at its settings, let alone connect.
func noEnv(t *testing.T) func(string) string {
	return func(k string) string {
		t.Errorf("the command read %s", k)
		return ""
	}
}

func TestEveryCommandHasHelpThatTouchesNothing(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		for _, flag := range []string{"--help", "-h"} {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"leadrelay", c.name, flag}, noEnv(t), &stdout, &stderr)
			if err != nil {
				t.Errorf("leadrelay %s %s: %v", c.name, flag, err)
			}
			if !strings.HasPrefix(stdout.String(), "usage: leadrelay "+c.name) {
				t.Errorf("leadrelay %s %s printed %q, want its usage", c.name, flag, stdout.String())
			}
		}
		var stdout bytes.Buffer
		if err := run(context.Background(), []string{"leadrelay", "help", c.name}, noEnv(t), &stdout, &bytes.Buffer{}); err != nil || !strings.HasPrefix(stdout.String(), "usage: leadrelay "+c.name) {
			t.Errorf("leadrelay help %s: %v, %q", c.name, err, stdout.String())
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"leadrelay", "help"}, noEnv(t), &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(stdout.String(), "  "+c.name+" ") {
			t.Errorf("leadrelay help does not list %s:\n%s", c.name, stdout.String())
		}
	}
}

func TestUsageErrorsExit2BeforeReadingSettings(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"replay"},
		{"replay", "not-a-uuid"},
		{"replay", "--failed", "0da2626d-5c1e-4f4a-9d43-4a3b7c2e8f10"},
		{"replay", "--nope"},
		{"serve", "extra"},
		{"migrate", "now"},
		{"dev", "--port", "1"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), append([]string{"leadrelay"}, args...), noEnv(t), &bytes.Buffer{}, &stderr)
		if code := exitCode(err); code != 2 {
			t.Errorf("leadrelay %v: exit %d (%v), want 2", args, code, err)
		}
	}
	err := run(context.Background(), []string{"leadrelay", "replay", "not-a-uuid"}, noEnv(t), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not an event id") {
		t.Errorf("replay not-a-uuid: %v, want it to say the argument is not an event id", err)
	}
}

func TestCommandsNameDatabaseURLWhenItIsTheProblem(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"migrate"}, {"replay", "--failed"}} {
		err := run(context.Background(), append([]string{"leadrelay"}, args...), env(nil), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL is not set") {
			t.Errorf("leadrelay %v without DATABASE_URL: %v", args, err)
		}
	}
	// Nothing listens on port 1.
	unreachable := "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5"
	for _, args := range [][]string{{"migrate"}, {"replay", "--failed"}} {
		err := run(context.Background(), append([]string{"leadrelay"}, args...), env(map[string]string{"DATABASE_URL": unreachable}), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || exitCode(err) != 1 {
			t.Errorf("leadrelay %v on an unreachable database: %v, want an error naming DATABASE_URL", args, err)
		}
	}
}

// `make run` with the port taken says so before it starts anything.
func TestDevChecksThePortFirst(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	var out bytes.Buffer
	err = run(context.Background(), []string{"leadrelay", "dev"}, env(map[string]string{"PORT": strconv.Itoa(port)}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("err = %v, want one saying port %d is in use", err, port)
	}
	if out.Len() > 0 {
		t.Errorf("dev printed before it found the port taken:\n%s", out.String())
	}
}

// The built binary: exit statuses as a shell sees them, and the version the
// build set.
func TestBinaryExitStatusAndVersion(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "leadrelay")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=abc1234", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"version"}, 0, "leadrelay v9.8.7 (commit abc1234)"},
		{[]string{"--version"}, 0, "leadrelay v9.8.7 (commit abc1234)"},
		{[]string{"serve", "--help"}, 0, "usage: leadrelay serve"},
		{[]string{"replay", "not-a-uuid"}, 2, "is not an event id"},
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"migrate"}, 1, "DATABASE_URL is not set"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			code = exitErr.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.out) {
			t.Errorf("leadrelay %v: exit %d, output %q; want exit %d and %q", tc.args, code, out, tc.code, tc.out)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// The load program runs end to end and prints the ratio; the figures
// themselves are not asserted (they depend on the machine).
func TestTheLoadProgramPrintsTheRatio(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"-duration=300ms", "-warmup=0", "-rounds=1", "-concurrency=2", "-database-url", dbtest.NewURL(t)},
		func(string) string { return "" }, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"database ceiling", "intake (HTTP POST /api/submit-contact)", "ratio intake/ceiling"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "FAILURES") {
		t.Errorf("requests failed:\n%s", out.String())
	}
}

func TestTheLoadProgramStaysOnThisMachine(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-database-url", "postgres://postgres@db.example.com/postgres"},
		{"-target", "https://leadrelay.fly.dev", "-database-url", "postgres://postgres@127.0.0.1:1/postgres"},
	} {
		if err := run(context.Background(), args, func(string) string { return "" }, &bytes.Buffer{}); err == nil ||
			!strings.Contains(err.Error(), "loopback") {
			t.Errorf("%v: err %v, want a refusal naming loopback", args, err)
		}
	}
}

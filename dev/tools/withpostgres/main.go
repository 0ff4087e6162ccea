// Command withpostgres runs a command with TEST_DATABASE_URL pointing at a
// PostgreSQL server: the one TEST_DATABASE_URL already names, else the one on
// 127.0.0.1:5432 when it answers, else a throwaway server it starts from the
// machine's binaries and stops afterwards. `make test` runs through it.
//
//	go run ./dev/tools/withpostgres -- go test ./...
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/devpostgres"
)

const localURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: withpostgres -- command [args...]")
		os.Exit(2)
	}
	code, err := run(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "withpostgres:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(args []string) (int, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	url := os.Getenv("TEST_DATABASE_URL")
	switch {
	case url != "":
		if err := ping(ctx, url); err != nil {
			return 1, fmt.Errorf("TEST_DATABASE_URL does not answer: %w", err)
		}
	case ping(ctx, localURL) == nil:
		url = localURL
	default:
		fmt.Fprintln(os.Stderr, "withpostgres: no PostgreSQL on 127.0.0.1:5432; starting a throwaway one")
		// Durable, as the machine's own PostgreSQL and production are: the tests see the
		// commits production makes (doctor's durability check among them).
		srv, err := devpostgres.Start(ctx, devpostgres.Options{Durable: true})
		if err != nil {
			return 1, err
		}
		defer srv.Stop()
		url = srv.URL
	}

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "TEST_DATABASE_URL="+url)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	return 0, err
}

func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

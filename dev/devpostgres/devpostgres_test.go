package devpostgres_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/devpostgres"
)

func TestStartServesAndStopCleansUp(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := devpostgres.Start(ctx, devpostgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var dataDir string
	var superuser bool
	if err := conn.QueryRow(ctx, "select current_setting('data_directory'), rolsuper from pg_roles where rolname = current_user").Scan(&dataDir, &superuser); err != nil {
		t.Fatal(err)
	}
	// The server's CPU time is readable: its processes are this machine's postgres. (It may
	// still be 0: the kernel counts it in 10 ms ticks.)
	if cpu, err := devpostgres.CPU(ctx, conn); err != nil || cpu < 0 {
		t.Errorf("devpostgres.CPU = %v, %v", cpu, err)
	}
	conn.Close(ctx)
	if !superuser {
		t.Error("the URL's user is not a superuser; migrations need one")
	}
	if os.Geteuid() == 0 {
		st, err := os.Stat(dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Error("as root, the cluster belongs to root; PostgreSQL would refuse it")
		}
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("data directory %s left behind (stat: %v)", dataDir, err)
	}
	if _, err := pgx.Connect(ctx, srv.URL); err == nil {
		t.Error("server still answers after Stop")
	}
}

// A restart cuts every session and keeps the data: a table created before
// is there after, on the same URL.
func TestRestartKeepsTheData(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := devpostgres.Start(ctx, devpostgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "create table kept (n int); insert into kept values (42)"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "select 1"); err == nil {
		t.Error("a session survived the restart")
	}
	again, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	var n int
	if err := again.QueryRow(ctx, "select n from kept").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after the restart: %d, %v", n, err)
	}
}

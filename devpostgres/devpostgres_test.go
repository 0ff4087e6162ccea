package devpostgres_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/devpostgres"
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

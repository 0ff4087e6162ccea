package devpostgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// CPU is the CPU time the PostgreSQL server behind conn has used, when it runs
// on this machine: its postmaster's, its children's alive (backends,
// autovacuum, the checkpointer...) and those it has reaped. A benchmark reads
// it before and after a run: unlike SQL time, it does not grow when other
// work on the machine takes the CPU.
func CPU(ctx context.Context, conn *pgx.Conn) (time.Duration, error) {
	var backend int
	if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&backend); err != nil {
		return 0, fmt.Errorf("backend pid: %w", err)
	}
	// stat is /proc/<pid>/stat from field 3 (state) on; nil when pid is gone.
	stat := func(pid int) []string {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil
		}
		_, rest, _ := strings.Cut(string(raw), ") ") // the command may hold spaces
		return strings.Fields(rest)
	}
	ticks := func(f []string, fields ...int) (n int64) {
		for _, i := range fields {
			v, _ := strconv.ParseInt(f[i-3], 10, 64)
			n += v
		}
		return n
	}
	// A server in a container names pids of its own namespace: the pid here may be another
	// program's, or nobody's.
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", backend))
	own := stat(backend)
	if err != nil || strings.TrimSpace(string(comm)) != "postgres" || len(own) < 2 {
		return 0, fmt.Errorf("backend %d is not a postgres process of this machine", backend)
	}
	postmaster, _ := strconv.Atoi(own[1])
	pm := stat(postmaster)
	if len(pm) < 15 {
		return 0, fmt.Errorf("postmaster %d: no /proc/%d/stat", postmaster, postmaster)
	}
	total := ticks(pm, 14, 15, 16, 17) // its own time and its reaped children's
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if f := stat(pid); len(f) > 15 && f[1] == strconv.Itoa(postmaster) {
			total += ticks(f, 14, 15)
		}
	}
	return time.Duration(total) * time.Second / 100, nil // USER_HZ
}

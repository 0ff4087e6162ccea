// Package devpostgres runs a throwaway PostgreSQL server from the machine's
// own binaries: the embedded default behind `make run`, and the server
// `make test` starts when none is reachable. PostgreSQL refuses to run as
// root, so as root the server runs as an unprivileged user.
package devpostgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway PostgreSQL.
type Server struct {
	URL    string // superuser "postgres", database "postgres", over TCP on 127.0.0.1
	dir    string
	cmd    *exec.Cmd
	done   chan error
	newCmd func() *exec.Cmd // the server process, for (re)starts
}

// Options tune Start; the zero value is fine.
type Options struct {
	Port int       // 0: a free port
	Log  io.Writer // the server's own log; nil discards it
	// Settings are extra server settings, "name=value" each, e.g.
	// "shared_preload_libraries=pg_stat_statements" for a benchmark.
	Settings []string
	// Durable keeps PostgreSQL's own durability, as production has it (Supabase
	// too): fsync, synchronous_commit and full_page_writes on, so a commit
	// returns once its WAL is on disk. Benchmarks set it, to time the
	// acknowledgement the intake promises; without it the server trades
	// durability for speed, as tests and `make run` want.
	Durable bool
}

// Start initialises a cluster in a new temporary directory and starts it,
// waiting (within ctx) until it accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	cred, err := unprivileged()
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "leadrelay-postgres-")
	if err != nil {
		return nil, fmt.Errorf("postgres: temp dir: %w", err)
	}
	s := &Server{dir: dir}
	if err := s.init(ctx, bin, cred, port, opts.Log, opts.Durable, opts.Settings); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) init(ctx context.Context, bin string, cred *syscall.Credential, port int, log io.Writer, durable bool, settings []string) error {
	if log == nil {
		log = io.Discard
	}
	data := filepath.Join(s.dir, "data")
	if cred != nil {
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("postgres: hand %s to uid %d: %w", s.dir, cred.Uid, err)
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("postgres: initdb: %w\n%s", err, out)
	}
	args := []string{"-D", data,
		"-p", strconv.Itoa(port), "-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=300"}
	if !durable {
		// A throwaway server trades durability for speed.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, setting := range settings {
		args = append(args, "-c", setting)
	}
	s.newCmd = func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
		cmd.Stdout, cmd.Stderr = log, log
		// Pdeathsig: the server goes when we go, even on SIGKILL.
		// Setpgid: a Ctrl-C in the terminal reaches us, not the server, so the
		// service can still release its claims and lease before Stop.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGTERM, Setpgid: true}
		return cmd
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := s.launch(ctx); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// launch starts the server process and waits until it accepts connections.
func (s *Server) launch(ctx context.Context) error {
	s.cmd = s.newCmd()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("postgres: start: %w", err)
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	return s.waitReady(ctx)
}

// Restart stops the server (fast shutdown: every session is cut) and starts
// it again on the same files and port, waiting until it accepts
// connections: a database restart, as the chaos program plays it.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.halt(); err != nil {
		return err
	}
	return s.launch(ctx)
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.Connect(ctx, s.URL)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case exitErr := <-s.done:
			return fmt.Errorf("postgres exited while starting: %v", exitErr)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections in time: %w", err)
		case <-tick.C:
		}
	}
}

// Stop shuts the server down (fast shutdown, then a kill after 10 seconds)
// and removes its files.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.dir)
	return s.halt()
}

// halt stops the server process (fast shutdown, then a kill after 10 seconds).
func (s *Server) halt() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("postgres: did not stop within 10s; killed")
	}
}

// BinDir finds the PostgreSQL server binaries: $PG_BINDIR, then pg_config,
// then Debian's /usr/lib/postgresql/<newest>/bin, then $PATH.
func BinDir() (string, error) {
	has := func(dir string) bool {
		_, err := os.Stat(filepath.Join(dir, "initdb"))
		return err == nil
	}
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("PG_BINDIR=%s has no initdb", dir)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	if dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin"); len(dirs) > 0 {
		slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
		for _, dir := range dirs {
			if has(dir) {
				return dir, nil
			}
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil && has(dir) {
			return dir, nil
		}
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries found (install Debian's postgresql package, or set PG_BINDIR)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// unprivileged returns the credential to run PostgreSQL with when we are
// root (the postgres user where it exists, else nobody), and nil otherwise.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

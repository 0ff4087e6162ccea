package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/edge/server"
	"github.com/truenester/leadrelay/supabase"
)

// testBundle is a server on a fresh database, reached over real HTTP.
type testBundle struct {
	url  string          // the server's base URL
	db   *pgxpool.Pool   // the database it writes to
	logs *testkit.Buffer // everything it logged, as JSON lines
}

// setup starts the server on a fresh migrated database. env overrides the
// configuration's variables; the rate limit is generous unless overridden.
func setup(t testing.TB, env map[string]string, opts ...func(*server.Deps)) *testBundle {
	t.Helper()
	db := dbtest.New(t)
	return setupWithPool(t, db, env, opts...)
}

func setupWithPool(t testing.TB, db *pgxpool.Pool, env map[string]string, opts ...func(*server.Deps)) *testBundle {
	t.Helper()
	logs := &testkit.Buffer{}
	deps := server.Deps{
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DB:     db,
		Schema: supabase.FS,
		Edge:   testConfig(t, env),
		// Deadlines no load reaches (the default 5s was, with the machine at load 10, and
		// /readyz's 2s at a fresh clone's CI beside a chaos run): the tests of a deadline
		// itself set their own.
		DBTimeout:    time.Minute,
		ReadyTimeout: time.Minute,
	}
	for _, opt := range opts {
		opt(&deps)
	}
	srv := httptest.NewServer(server.New(deps))
	t.Cleanup(srv.Close)
	return &testBundle{url: srv.URL, db: db, logs: logs}
}

func testConfig(t testing.TB, env map[string]string) config.Edge {
	t.Helper()
	vars := map[string]string{
		"FRONTEND_URL":          "https://truenester.com",
		"RATE_LIMIT_PER_MINUTE": "100000",
		"RATE_LIMIT_BURST":      "10000",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.LoadEdge(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// answer is a response, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// lead is the body of a 200 or 201.
type lead struct {
	ID                  string    `json:"id"`
	Quality             string    `json:"quality"`
	SLAResponseDeadline time.Time `json:"sla_response_deadline"`
}

// apiError is the body of every error answer.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// post sends body as JSON to path; headers are name, value pairs that may
// override Content-Type.
func (b *testBundle) post(t testing.TB, path, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", req.Method, req.URL.Path, err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: body}
}

// lead decodes a 200 or 201 answer, failing the test on any other status.
func (a answer) lead(t testing.TB, wantStatus int) lead {
	t.Helper()
	if a.status != wantStatus {
		t.Fatalf("status %d, want %d: %s", a.status, wantStatus, a.body)
	}
	var l lead
	if err := json.Unmarshal(a.body, &l); err != nil || l.ID == "" {
		t.Fatalf("answer %s: no lead id (%v)", a.body, err)
	}
	return l
}

// error decodes an error answer, failing the test unless its status and
// code are the ones wanted.
func (a answer) error(t testing.TB, wantStatus int, wantCode string) apiError {
	t.Helper()
	if a.status != wantStatus {
		t.Fatalf("status %d, want %d: %s", a.status, wantStatus, a.body)
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	var e apiError
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error answer %s is not JSON: %v", a.body, err)
	}
	if e.Error.Code != wantCode || e.Error.Message == "" {
		t.Fatalf("error %s, want code %q with a message", a.body, wantCode)
	}
	return e
}

// count runs a count(*) query.
func (b *testBundle) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// logLines returns the records logged as JSON lines into b.
func logLines(t testing.TB, b *testkit.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

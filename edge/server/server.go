// Package server is the HTTP edge of leadrelay: the intake endpoints, the
// webhook receiver, the admin API, health and metrics. Handlers return
// errors; one responder turns them into HTTP answers.
package server

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"
	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/edge/console"
	"github.com/truenester/leadrelay/ops/health"
	"github.com/truenester/leadrelay/ops/metrics"
)

// Deps is what the server needs from the rest of the program.
type Deps struct {
	Logger *slog.Logger
	// DB is the intake's pool (and /readyz's); AdminDB the admin API's and
	// the console's, so admins never take the connections leads are
	// written on (nil: DB).
	DB      *pgxpool.Pool
	AdminDB *pgxpool.Pool
	Schema  fs.FS // supabase.FS: readiness compares the database with it
	// Edge is the settings the edge reads (no more of the configuration).
	Edge config.Edge
	// DBTimeout bounds each intake's database call, waiting for a pooled
	// connection included, so an unreachable or saturated database gets a
	// 503 instead of a hung request (DB_INTAKE_TIMEOUT). Zero means its
	// default, config.DefaultDBSettings.IntakeTimeout.
	DBTimeout time.Duration
	// ReadyTimeout bounds /readyz's check of the database (a ping and the
	// migration history, waiting for a pooled connection included). Zero
	// means DefaultReadyTimeout. Not DBTimeout, which an operator may set
	// past a load balancer's own check timeout.
	ReadyTimeout time.Duration
	// Doorbell wakes the dispatcher when the database webhook announces an
	// event; nil when this process does not deliver.
	Doorbell func()
	// Console is the admin console (/admin) and the JSON admin API's actions; nil means
	// one with the admin key alone and no live updates.
	Console *console.Console
	// Clock is the one clock every time the edge reads comes from (the
	// process's, shared with the dispatcher, the SLA engine and the
	// channels); nil means the real one.
	Clock clockwork.Clock
	// Health is what the process's background parts say of themselves
	// (the dispatcher, LISTEN, the SLA engine): /readyz fails while one
	// does not work. nil: only the database is checked.
	Health *health.Registry
	// Metrics counts every request and serves /metrics behind
	// METRICS_TOKEN; nil: neither.
	Metrics *metrics.Metrics
}

// DefaultReadyTimeout is short enough that a health check gets its answer
// well within its own timeout.
const DefaultReadyTimeout = 2 * time.Second

// New returns the service's HTTP handler.
func New(d Deps) http.Handler {
	if d.DBTimeout == 0 {
		d.DBTimeout = config.DefaultDBSettings.IntakeTimeout
	}
	if d.ReadyTimeout == 0 {
		d.ReadyTimeout = DefaultReadyTimeout
	}
	if d.Doorbell == nil {
		d.Doorbell = func() {}
	}
	if d.Clock == nil {
		d.Clock = clockwork.NewRealClock()
	}
	if d.AdminDB == nil {
		d.AdminDB = d.DB
	}
	// Every line logged with a request's context carries its request id.
	d.Logger = slog.New(requestIDLogHandler{d.Logger.Handler()})
	if d.Console == nil {
		d.Console = console.New(console.Deps{DB: d.AdminDB, Logger: d.Logger, AdminKey: d.Edge.AdminAPIKey, Clock: d.Clock, Doorbell: d.Doorbell})
	}
	s := &server{
		Deps:    d,
		limiter: newClientLimiter(d.Edge.RateLimitPerMinute, d.Edge.RateLimitBurst, d.Clock.Now),
		origins: make(map[string]bool, len(d.Edge.FrontendOrigins)),
	}
	for _, o := range d.Edge.FrontendOrigins {
		s.origins[o] = true
	}
	if len(s.origins) == 0 {
		s.Logger.Warn("FRONTEND_URL is not set: browsers on other origins cannot post leads")
	}
	router := httprouter.New()
	notFound := s.handle(func(http.ResponseWriter, *http.Request, httprouter.Params) error {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint"}
	})
	consoleNotFound := s.Console.NotFound()
	router.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A browser asking for a page under /admin gets the console's page; any other
		// caller the API's JSON.
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/admin/") && strings.Contains(r.Header.Get("Accept"), "text/html") {
			consoleNotFound.ServeHTTP(w, r)
			return
		}
		notFound.ServeHTTP(w, r)
	})
	router.MethodNotAllowed = s.handle(func(http.ResponseWriter, *http.Request, httprouter.Params) error {
		return &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "this endpoint does not answer that method"}
	})
	s.routes(router)
	// Outermost first: every answer, a recovered panic's and refusals
	// included, carries the request id and is logged; CORS headers go on
	// every answer a browser reads.
	return s.withRequestID(s.logAccess(router, s.recoverPanics(s.cors(router))))
}

type server struct {
	Deps
	limiter *clientLimiter
	origins map[string]bool // FRONTEND_URL's origins
	// proxyWarned: a proxy header from a peer outside TRUSTED_PROXIES was
	// logged once.
	proxyWarned atomic.Bool
}

// handlerFunc is a handler that returns its error to the one responder.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error

func (s *server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r, httprouter.ParamsFromContext(r.Context())); err != nil {
			s.respondError(w, r, err)
		}
	})
}

// ping checks that the database answers.
func (s *server) ping(ctx context.Context) error { return s.DB.Ping(ctx) }

// Package console is the admin console served at /admin: server-rendered pages (html/template,
// embedded assets, a little JavaScript), signed in with ADMIN_API_KEY or a Supabase admin's
// account, live through Server-Sent Events fed by the database's notifications. Its Store is
// also what the JSON admin API (package server) acts through, so both do the same thing.
package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"
	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/database/dberr"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Deps is what the console needs from the rest of the program.
type Deps struct {
	DB       *pgxpool.Pool
	Logger   *slog.Logger
	AdminKey string          // ADMIN_API_KEY; "" turns sign-in with a key off
	Supabase *Supabase       // nil: no Supabase sign-in
	Hub      *Hub            // nil: a hub nobody feeds (pages still work, without live updates)
	Clock    clockwork.Clock // the time of pages, sessions and event streams; nil: the real one
	Doorbell func()          // wakes the dispatcher after a replay
	// DBTimeout bounds each database call of a page, an action or the JSON admin API,
	// waiting for a connection of DB included (0: DB_ADMIN_TIMEOUT's default,
	// config.DefaultDBSettings.AdminTimeout): past it the answer is 503 with Retry-After.
	DBTimeout time.Duration
}

// Console serves the admin console.
type Console struct {
	Deps
	store *Store
	pages map[string]*template.Template

	renewals renewals // of Supabase admins' sessions
	streams  streams  // the open event streams, by session

	closing   chan struct{} // closed by EndStreams
	closeOnce sync.Once
}

// EndStreams ends every event stream, so a server shutting down need not wait for them
// (http.Server.RegisterOnShutdown); the browsers reconnect to another replica.
func (c *Console) EndStreams() { c.closeOnce.Do(func() { close(c.closing) }) }

// New returns the console.
func New(d Deps) *Console {
	if d.Clock == nil {
		d.Clock = clockwork.NewRealClock()
	}
	if d.Doorbell == nil {
		d.Doorbell = func() {}
	}
	if d.Hub == nil {
		d.Hub = NewHub(d.Logger)
	}
	c := &Console{Deps: d, store: NewStore(d.DB, d.DBTimeout), closing: make(chan struct{})}
	c.pages = parsePages()
	return c
}

// Store is the console's data access, shared with the JSON admin API.
func (c *Console) Store() *Store { return c.store }

// Enabled says whether anyone can sign in.
func (c *Console) Enabled() bool { return c.AdminKey != "" || c.Supabase != nil }

// Authenticate returns the admin a Bearer token names: the admin key, or a Supabase admin's
// access token. ErrUnauthorized or ErrNotAdmin otherwise.
func (c *Console) Authenticate(r *http.Request) (Actor, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return Actor{}, ErrUnauthorized
	}
	if KeyMatches(c.AdminKey, token) {
		return AdminKeyActor, nil
	}
	if c.Supabase != nil && strings.Count(token, ".") == 2 {
		actor, _, err := c.Supabase.Verify(r.Context(), token)
		return actor, err
	}
	return Actor{}, ErrUnauthorized
}

// Route is one of the console's routes, for the server's route table.
type Route struct {
	Method  string
	Path    string
	Handler http.Handler
}

// Routes lists the console's routes.
func (c *Console) Routes() []Route {
	get, post := http.MethodGet, http.MethodPost
	assets, _ := fs.Sub(assetFS, "assets")
	return []Route{
		{get, "/admin", http.RedirectHandler("/admin/leads", http.StatusSeeOther)},
		{get, "/admin/login", c.handle(c.loginPage)},
		{post, "/admin/login", c.handle(c.login)},
		{post, "/admin/logout", c.action(c.logout)},
		{get, "/admin/assets/*file", c.assetHandler(assets)},

		{get, "/admin/leads", c.page(c.leadsPage)},
		{get, "/admin/banner", c.page(c.bannerFragment)},
		{get, "/admin/live", c.page(c.live)},
		{get, "/admin/leads/:id", c.page(c.leadPage)},
		{post, "/admin/leads/:id/:action", c.action(c.leadAction)},
		{post, "/admin/followups/:id/:action", c.action(c.followUpAction)},
		{get, "/admin/deliveries", c.page(c.deliveriesPage)},
		{post, "/admin/deliveries/replay", c.action(c.replay)},
		{get, "/admin/report", c.page(c.reportPage)},
	}
}

// NotFound is the console's page for a path under /admin that nothing serves, for a browser
// (a mistyped or outdated link), in place of the API's JSON answer.
func (c *Console) NotFound() http.Handler {
	return c.handle(func(http.ResponseWriter, *http.Request) error {
		return &pageError{status: http.StatusNotFound, msg: "There is no such page in the console."}
	})
}

func (c *Console) assetHandler(assets fs.FS) http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = httprouter.ParamsFromContext(r.Context()).ByName("file")
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r2)
	})
}

// pageError is an error the console shows as a page with a status.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &pageError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// handle serves a handler that returns its error, shown as an error page.
func (c *Console) handle(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		if err := h(w, r); err != nil {
			c.fail(w, r, err)
		}
	})
}

// setPageHeaders keeps the console's pages out of frames and caches, and scripts to its own.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; the error is in the service's log."
	var pe *pageError
	switch {
	case errors.As(err, &pe):
		status, msg = pe.status, pe.msg
	case errors.Is(err, ErrNotFound):
		status, msg = http.StatusNotFound, "Not found: "+err.Error()
	case errors.Is(err, ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	case errors.Is(err, ErrConflict):
		status, msg = http.StatusConflict, err.Error()
	case errors.Is(err, ErrForbidden):
		status, msg = http.StatusForbidden, err.Error()
	case errors.Is(err, ErrUnavailable):
		status, msg = http.StatusServiceUnavailable, "The database is busy or away right now: try again in a moment."
		w.Header().Set("Retry-After", strconv.Itoa(int(dberr.RetryAfter/time.Second)))
	}
	if status >= 500 {
		c.Logger.ErrorContext(r.Context(), "console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		c.Logger.InfoContext(r.Context(), "console request refused", "method", r.Method, "path", r.URL.Path, "status", status, "reason", msg)
	}
	if r.URL.Query().Get("fragment") != "" || r.Header.Get("Accept") == "text/event-stream" {
		http.Error(w, msg, status)
		return
	}
	c.render(w, r, status, "error", &view{Title: http.StatusText(status), Message: msg})
}

// Package server is the HTTP edge of leadrelay: the intake endpoints, the
// webhook receiver, the admin API, health and metrics. Handlers return
// errors; one responder turns them into HTTP answers.
package server

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/julienschmidt/httprouter"
)

// Deps is what the server needs from the rest of the program.
type Deps struct {
	Logger *slog.Logger
	DB     *pgxpool.Pool
	Schema fs.FS // supabase.FS: readiness compares the database with it
}

// New returns the service's HTTP handler.
func New(d Deps) http.Handler {
	s := &server{Deps: d}
	router := httprouter.New()
	s.routes(router)
	return router
}

type server struct {
	Deps
}

// handlerFunc is a handler that returns its error to the one responder.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p httprouter.Params) error

func (s *server) handle(h handlerFunc) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		if err := h(w, r, p); err != nil {
			s.respondError(w, r, err)
		}
	}
}

// ping checks that the database answers.
func (s *server) ping(ctx context.Context) error { return s.DB.Ping(ctx) }

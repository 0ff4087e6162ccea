package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/database/migrate"
)

// healthz answers while the process runs.
func (s *server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	respondJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz answers 200 when the database answers and carries every migration
// this binary knows, and every background part of the process works.
func (s *server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if err := s.Health.Check(); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: "not working: " + err.Error(), RetryAfter: 5 * time.Second, NotReady: true}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.ReadyTimeout)
	defer cancel()
	if err := s.ping(ctx); err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseUnavailable, Message: "the database does not answer", RetryAfter: 5 * time.Second, Err: err, NotReady: true}
	}
	pending, err := migrate.Pending(ctx, s.DB, s.Schema)
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseUnavailable, Message: "cannot read the migration history", RetryAfter: 5 * time.Second, Err: err, NotReady: true}
	}
	if len(pending) > 0 {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeMigrationsPending, Message: "migrations not applied: " + strings.Join(pending, ", "), RetryAfter: 30 * time.Second, NotReady: true}
	}
	respondJSON(w, http.StatusOK, map[string]any{"status": "ready", "parts": s.Health.States()})
	return nil
}

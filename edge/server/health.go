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
	// Every answer but 200 is a 503 that says why, and a state, not a failed request.
	notReady := func(code ErrorCode, msg string, retryAfter time.Duration, err error) error {
		return &Error{Status: http.StatusServiceUnavailable, Code: code, Message: msg, RetryAfter: retryAfter, Err: err, NotReady: true}
	}
	if err := s.Health.Check(); err != nil {
		return notReady(CodeNotReady, "not working: "+err.Error(), 5*time.Second, nil)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.ReadyTimeout)
	defer cancel()
	if err := s.ping(ctx); err != nil {
		return notReady(CodeDatabaseUnavailable, "the database does not answer", 5*time.Second, err)
	}
	pending, err := migrate.Pending(ctx, s.DB, s.Schema)
	if err != nil {
		return notReady(CodeDatabaseUnavailable, "cannot read the migration history", 5*time.Second, err)
	}
	if len(pending) > 0 {
		return notReady(CodeMigrationsPending, "migrations not applied: "+strings.Join(pending, ", "), 30*time.Second, nil)
	}
	respondJSON(w, http.StatusOK, map[string]any{"status": "ready", "parts": s.Health.States()})
	return nil
}

package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/edge/console"
	"github.com/truenester/leadrelay/sla"
)

// requireAdmin lets through requests that carry ADMIN_API_KEY, or a Supabase admin's access
// token, as a Bearer token; the admin is in the request's context (actorOf). With neither
// configured the admin endpoints are off.
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		if !s.Console.Enabled() {
			return &Error{Status: http.StatusServiceUnavailable, Code: CodeAdminDisabled, Message: "the admin API is off: ADMIN_API_KEY is not set"}
		}
		actor, err := s.Console.Authenticate(r)
		if errors.Is(err, console.ErrNotAdmin) {
			return &Error{Status: http.StatusForbidden, Code: CodeNotAdmin, Message: "this user is not an admin (app_metadata.role is not \"admin\")"}
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadrelay admin"`)
			return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "an Authorization: Bearer <ADMIN_API_KEY or a Supabase admin access token> header is required", Err: err}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, actor)))
		return nil
	})
}

// replayEvent sends an event's failed channels again.
func (s *server) replayEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id := p.ByName("id")
	n, err := s.Console.Store().ReplayEvent(r.Context(), actorOf(r.Context()), id)
	if errors.Is(err, console.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no lead event " + id}
	}
	if err != nil {
		return consoleError(err)
	}
	if n > 0 {
		s.Doorbell()
	}
	respondJSON(w, http.StatusAccepted, map[string]any{"id": id, "channels_queued": n})
	return nil
}

// slaAlerts lists the leads approaching or past their deadline, unanswered,
// soonest first: what the admin panel's SLA banner shows.
func (s *server) slaAlerts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	alerts, err := s.Console.Store().Alerts(r.Context(), s.Clock.Now())
	if err != nil {
		return consoleError(err)
	}
	if alerts == nil {
		alerts = []sla.Alert{}
	}
	respondJSON(w, http.StatusOK, map[string]any{"alerts": alerts})
	return nil
}

// slaSummary reports, per quality and source over ?from=&to= (dates or
// RFC 3339 times; default the last 30 days), how leads were answered.
func (s *server) slaSummary(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	from, to, err := parsePeriod(q.Get("from"), q.Get("to"), s.Clock.Now())
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidPeriod, Message: err.Error()}
	}
	rows, err := s.Console.Store().Summary(r.Context(), from, to)
	if err != nil {
		return consoleError(err)
	}
	if rows == nil {
		rows = []sla.SummaryRow{}
	}
	respondJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "rows": rows})
	return nil
}

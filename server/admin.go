package server

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/outbox"
	"github.com/truenester/leadrelay/sla"
)

// requireAdmin lets through requests that carry ADMIN_API_KEY as a Bearer
// token. Without a configured key the admin endpoints are off.
func (s *server) requireAdmin(next http.Handler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		if s.Edge.AdminAPIKey == "" {
			return &Error{Status: http.StatusServiceUnavailable, Code: CodeAdminDisabled, Message: "the admin API is off: ADMIN_API_KEY is not set"}
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.Edge.AdminAPIKey)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="leadrelay admin"`)
			return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "an Authorization: Bearer <ADMIN_API_KEY> header is required"}
		}
		next.ServeHTTP(w, r)
		return nil
	})
}

// replayEvent sends an event's failed channels again.
func (s *server) replayEvent(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	id := p.ByName("id")
	n, err := s.Outbox.Replay(r.Context(), id, s.Now())
	if errors.Is(err, outbox.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no lead event " + id}
	}
	if err != nil {
		return err
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
	alerts, err := sla.Alerts(r.Context(), s.DB, s.Now())
	if err != nil {
		return err
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
	from, to, err := parsePeriod(q.Get("from"), q.Get("to"), s.Now())
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidPeriod, Message: err.Error()}
	}
	rows, err := sla.Summary(r.Context(), s.DB, from, to)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []sla.SummaryRow{}
	}
	respondJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "rows": rows})
	return nil
}

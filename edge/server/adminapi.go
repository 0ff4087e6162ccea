package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/database/dberr"
	"github.com/truenester/leadrelay/edge/console"
)

// The JSON admin API: what the console does, for TrueNester's own panel. Every endpoint
// takes Authorization: Bearer <ADMIN_API_KEY> or a Supabase admin's access token, acts
// through the console's Store (the SQL functions of 80_console.sql), and writes its
// timeline entry naming who acted.

type actorKey struct{}

// actorOf returns the admin requireAdmin let through.
func actorOf(ctx context.Context) console.Actor {
	a, _ := ctx.Value(actorKey{}).(console.Actor)
	return a
}

// consoleError turns the console's errors into the one responder's.
func consoleError(err error) error {
	switch {
	case errors.Is(err, console.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error(), Err: err}
	case errors.Is(err, console.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: err.Error(), Err: err}
	case errors.Is(err, console.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error(), Err: err}
	case errors.Is(err, console.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: err.Error(), Err: err}
	case errors.Is(err, console.ErrUnavailable):
		// The admin pool had no connection free, or the database did not answer, within
		// the admin deadline (DB_ADMIN_TIMEOUT), the connection was lost, or a row stayed
		// locked past DB_LOCK_TIMEOUT.
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseUnavailable, Message: "the database is busy or away; try again shortly", Err: err,
			RetryAfter: dberr.RetryAfter}
	}
	return err
}

// maxAdminBody bounds an admin request's JSON body.
const maxAdminBody = 64 << 10

// decodeAdmin reads a JSON object body into dst.
func decodeAdmin(w http.ResponseWriter, r *http.Request, dst any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Message: "send JSON, with Content-Type: application/json"}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "the body is not the JSON object this endpoint takes: " + err.Error()}
	}
	return nil
}

func (s *server) apiLeads(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	f := console.Filter{Status: q.Get("status"), Quality: q.Get("quality"), Source: q.Get("source"),
		Assignee: q.Get("assignee"), SLA: q.Get("sla"), Query: q.Get("q"), After: q.Get("after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = -1
		}
		f.Limit = n
	}
	if bad := f.Check(); bad != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidFilter, Message: "some filters are not valid", Fields: bad}
	}
	page, err := s.Console.Store().Leads(r.Context(), f, s.Clock.Now())
	if err != nil {
		return consoleError(err)
	}
	respondJSON(w, http.StatusOK, page)
	return nil
}

func (s *server) apiLead(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	lead, err := s.Console.Store().Lead(r.Context(), p.ByName("id"))
	if err != nil {
		return consoleError(err)
	}
	respondJSON(w, http.StatusOK, lead)
	return nil
}

// apiLeadAction is POST /admin/api/leads/:id/:action.
func (s *server) apiLeadAction(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	store, actor, id, ctx := s.Console.Store(), actorOf(r.Context()), p.ByName("id"), r.Context()
	var body struct {
		Status   string          `json:"status"`
		Quality  string          `json:"quality"`
		Assignee json.RawMessage `json:"assignee"` // a user id, or null to unassign
		Body     string          `json:"body"`
		console.NewFollowUp
	}
	if p.ByName("action") != "contacted" || r.ContentLength > 0 {
		if err := decodeAdmin(w, r, &body); err != nil {
			return err
		}
	}
	var (
		changed bool
		newID   string
		err     error
		status  = http.StatusOK
	)
	switch p.ByName("action") {
	case "contacted":
		changed, err = store.MarkContacted(ctx, actor, id)
	case "status":
		changed, err = store.SetStatus(ctx, actor, id, body.Status)
	case "quality":
		changed, err = store.SetQuality(ctx, actor, id, body.Quality)
	case "assignee":
		var assignee *string
		if body.Assignee == nil || json.Unmarshal(body.Assignee, &assignee) != nil {
			return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "assignee is required: a user id, or null to unassign"}
		}
		unassigned := ""
		if assignee == nil {
			assignee = &unassigned
		}
		changed, err = store.Assign(ctx, actor, id, *assignee)
	case "notes":
		newID, err = store.AddNote(ctx, actor, id, body.Body)
		status = http.StatusCreated
	case "replies":
		newID, err = store.Reply(ctx, actor, id, body.Body)
		status = http.StatusCreated
	case "followups":
		newID, err = store.ScheduleFollowUp(ctx, actor, id, body.NewFollowUp)
		status = http.StatusCreated
	default:
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such action"}
	}
	if err != nil {
		return consoleError(err)
	}
	if newID != "" {
		respondJSON(w, status, map[string]any{"id": newID})
		return nil
	}
	respondJSON(w, status, map[string]any{"changed": changed})
	return nil
}

// apiFollowUpAction is POST /admin/api/followups/:id/complete or /cancel.
func (s *server) apiFollowUpAction(w http.ResponseWriter, r *http.Request, p httprouter.Params) error {
	store, actor := s.Console.Store(), actorOf(r.Context())
	var changed bool
	var err error
	switch p.ByName("action") {
	case "complete":
		changed, err = store.CompleteFollowUp(r.Context(), actor, p.ByName("id"))
	case "cancel":
		changed, err = store.CancelFollowUp(r.Context(), actor, p.ByName("id"))
	default:
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such action"}
	}
	if err != nil {
		return consoleError(err)
	}
	respondJSON(w, http.StatusOK, map[string]any{"changed": changed})
	return nil
}

func (s *server) apiDeliveries(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	q := r.URL.Query()
	f := console.DeliveryFilter{Channel: q.Get("channel"), Status: q.Get("status")}
	if bad := f.Check(); bad != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidFilter, Message: "some filters are not valid", Fields: bad}
	}
	list, err := s.Console.Store().OpenDeliveries(r.Context(), f)
	if err != nil {
		return consoleError(err)
	}
	respondJSON(w, http.StatusOK, map[string]any{"deliveries": list})
	return nil
}

// apiReplayFailed is POST /admin/api/deliveries/replay {"channel": optional}.
func (s *server) apiReplayFailed(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	var body struct {
		Channel string `json:"channel"`
	}
	if r.ContentLength != 0 {
		if err := decodeAdmin(w, r, &body); err != nil {
			return err
		}
	}
	n, err := s.Console.Store().ReplayFailed(r.Context(), actorOf(r.Context()), body.Channel)
	if err != nil {
		return consoleError(err)
	}
	if n > 0 {
		s.Doorbell()
	}
	respondJSON(w, http.StatusAccepted, map[string]any{"channels_queued": n})
	return nil
}

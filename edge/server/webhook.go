package server

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/webhook"
)

// maxWebhookBody bounds a database webhook: one lead_events row.
const maxWebhookBody = 256 << 10

// leadEventWebhook receives Supabase's database webhook for a lead_events
// insert, signed the Standard Webhooks way, and rings the dispatcher's
// doorbell. It answers 202 at once: the delivery happens after the answer,
// from the outbox row, so a webhook that arrives twice, late, or for an event
// already delivered changes nothing.
func (s *server) leadEventWebhook(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if len(s.Edge.WebhookKey) == 0 {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeWebhookDisabled, Message: "the webhook receiver is off: WEBHOOK_SECRET is not set"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: "a webhook body is at most 256 KiB"}
	}
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeUnreadableBody, Message: "the body could not be read", Err: err}
	}
	id, err := webhook.Verify(s.Edge.WebhookKey, r.Header, body, s.Clock.Now())
	if err != nil {
		return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidSignature, Message: err.Error()}
	}
	var payload struct {
		Type   string `json:"type"`
		Table  string `json:"table"`
		Schema string `json:"schema"`
		Record struct {
			ID        string `json:"id"`
			EventType string `json:"event_type"`
		} `json:"record"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: "the body is not a database webhook payload", Err: err}
	}
	if payload.Type != "INSERT" || payload.Schema != "public" || payload.Table != "lead_events" || payload.Record.ID != id {
		return &Error{Status: http.StatusBadRequest, Code: CodeUnexpectedPayload, Message: "expected an INSERT into public.lead_events whose record id is the webhook-id"}
	}
	s.Doorbell()
	s.Logger.DebugContext(r.Context(), "doorbell rang", "event", id, "event_type", payload.Record.EventType)
	respondJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "id": id})
	return nil
}

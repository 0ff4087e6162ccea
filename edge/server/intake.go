package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/database/dberr"
)

// leadRequest is a lead as the website posts it, and, encoded, the payload
// of public.submit_lead. An empty string is the same as a missing field.
type leadRequest struct {
	Form           leadrelay.Form `json:"form"`
	Name           string         `json:"name,omitempty"`
	Email          string         `json:"email,omitempty"`
	Phone          string         `json:"phone,omitempty"`
	Message        string         `json:"message,omitempty"`
	Source         string         `json:"source,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	DeviceInfo     map[string]any `json:"device_info,omitempty"`
	PropertyID     string         `json:"property_id,omitempty"`
	PropertyTitle  string         `json:"property_title,omitempty"`
	Budget         string         `json:"budget,omitempty"`
	Timeline       string         `json:"timeline,omitempty"`
	Financing      string         `json:"financing,omitempty"`
	SessionID      string         `json:"session_id,omitempty"`
	Quality        string         `json:"quality,omitempty"`
	Messages       []chatMessage  `json:"messages,omitempty"`
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
}

// chatMessage is one line of a chatbot transcript.
type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	At      string `json:"at,omitempty"`
}

// leadAnswer is what the website gets back.
type leadAnswer struct {
	ID                  string    `json:"id"`
	Quality             string    `json:"quality"`
	SLAResponseDeadline time.Time `json:"sla_response_deadline"`
}

// submitResult is what public.submit_lead returns.
type submitResult struct {
	ID                  string    `json:"id"`
	Created             bool      `json:"created"`
	Quality             string    `json:"quality"`
	LeadScore           int       `json:"lead_score"`
	SLAResponseDeadline time.Time `json:"sla_response_deadline"`
}

// dbRetryAfter is the Retry-After of a 503: the website retries with the
// same idempotency key, so retrying soon is safe.
const dbRetryAfter = 2 * time.Second

// intake serves one of the website's forms: decode, one call of
// submit_lead, answer 201 with a new lead or 200 with the one a retry or
// duplicate refers to.
func (s *server) intake(form leadrelay.Form) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return errBodyTooLarge
			}
			return &Error{Status: http.StatusBadRequest, Code: CodeUnreadableBody, Message: "the body could not be read", Err: err}
		}
		req, err := decodeLead(form, body, r.Header.Get("Idempotency-Key"))
		if err != nil {
			return err
		}
		payload, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode %s payload: %w", form, err)
		}
		res, err := s.submitLead(r.Context(), payload)
		if err != nil {
			return err
		}
		s.Logger.InfoContext(r.Context(), "lead stored", "form", form, "lead_id", res.ID, "created", res.Created,
			"quality", res.Quality, "lead_score", res.LeadScore, "email", redactEmail(req.Email), "phone", redactPhone(req.Phone))
		status := http.StatusCreated
		if !res.Created {
			status = http.StatusOK
		}
		respondJSON(w, status, leadAnswer{ID: res.ID, Quality: res.Quality, SLAResponseDeadline: res.SLAResponseDeadline})
		return nil
	}
}

// submitLead stores a lead, its messages, its event and its timeline entry
// in one call of public.submit_lead, which validates it. The call has a
// deadline, waiting for a connection included.
func (s *server) submitLead(ctx context.Context, payload []byte) (submitResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.DBTimeout)
	defer cancel()
	var raw []byte
	if err := s.DB.QueryRow(ctx, "select public.submit_lead($1::jsonb)", string(payload)).Scan(&raw); err != nil {
		return submitResult{}, s.submitError(ctx, err)
	}
	var res submitResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return submitResult{}, fmt.Errorf("decode submit_lead's answer: %w", err)
	}
	return res, nil
}

// submitError turns a failed submit_lead call into the caller's answer.
// submit_lead raises 22023 'invalid lead' naming every bad field, and, as
// PostgREST answers a PTnnn code with HTTP status nnn, PT422 for a reused
// idempotency key and PT413 for a payload over its limit.
func (s *server) submitError(ctx context.Context, err error) error {
	err = dberr.Interpret(err)
	e := dberr.Of(err)
	switch {
	case errors.Is(err, dberr.ErrInvalid) && e.Message == "invalid lead":
		// submit_lead names every bad field in DETAIL, as a JSON object.
		var fields map[string]string
		if jsonErr := json.Unmarshal([]byte(e.Detail), &fields); jsonErr != nil {
			s.Logger.WarnContext(ctx, "submit_lead's DETAIL is not a JSON object of strings", "err", jsonErr)
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidLead, Message: "the lead has invalid fields", Fields: fields}
	case errors.Is(err, dberr.ErrRefused) && e.HTTPStatus == http.StatusUnprocessableEntity:
		var detail struct {
			Key string `json:"idempotency_key"`
		}
		if jsonErr := json.Unmarshal([]byte(e.Detail), &detail); jsonErr != nil {
			s.Logger.WarnContext(ctx, "submit_lead's idempotency_key_reused DETAIL is not the expected JSON", "err", jsonErr)
		}
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeIdempotencyKeyReused,
			Message: fmt.Sprintf("the Idempotency-Key %q was used for another lead in the last 24 hours: use a new key for a new lead", detail.Key),
			Fields:  map[string]string{"idempotency_key": "was used with another payload"}}
	case errors.Is(err, dberr.ErrRefused) && e.HTTPStatus == http.StatusRequestEntityTooLarge:
		return errBodyTooLarge
	case errors.Is(err, dberr.ErrInvalid):
		// A data exception that submit_lead did not turn into a field
		// error: the input's fault, so a 400, but submit_lead should have
		// named the field. The message may quote the value, so it is not
		// logged.
		s.Logger.WarnContext(ctx, "submit_lead refused a value without naming the field", "sqlstate", e.Code, "where", e.Where)
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidLead, Message: "the lead has a value that cannot be stored"}
	case errors.Is(err, dberr.ErrUnavailable):
		// The database did not answer, or answered that it cannot now
		// (shutting down, too many connections, a sequence at its
		// maximum). Nothing was committed that a retry with the same key
		// would duplicate.
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseUnavailable, Message: "the lead could not be stored right now; retry with the same Idempotency-Key", Err: err, RetryAfter: dbRetryAfter}
	default:
		return fmt.Errorf("submit_lead: %w", err)
	}
}

// decodeLead reads a lead of form from body. It checks only what JSON
// itself says: the body is one object and each known field has its type,
// naming every field that has not. What the values must be is
// submit_lead's to say, in one place for this intake and PostgREST's RPC.
// Fields of other forms and unknown fields are ignored. The reasons are
// worded as submit_lead words the same ones.
func decodeLead(form leadrelay.Form, body []byte, headerKey string) (leadRequest, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		msg := "the body must be a JSON object"
		if syntaxErr, ok := errors.AsType[*json.SyntaxError](err); ok {
			msg = fmt.Sprintf("the body is not valid JSON: %v", syntaxErr)
		} else if errors.Is(err, io.ErrUnexpectedEOF) || len(bytes.TrimSpace(body)) == 0 {
			msg = "the body is not valid JSON: it ends too soon"
		}
		return leadRequest{}, &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: msg}
	}
	d := fieldDecoder{raw: raw, bad: map[string]string{}}
	req := leadRequest{Form: form}
	d.text("name", &req.Name)
	d.text("email", &req.Email)
	d.text("phone", &req.Phone)
	d.text("message", &req.Message)
	d.text("source", &req.Source)
	d.object("metadata", &req.Metadata)
	d.object("device_info", &req.DeviceInfo)
	d.text("idempotency_key", &req.IdempotencyKey)
	switch form {
	case leadrelay.FormPropertyInquiry:
		d.text("property_id", &req.PropertyID)
		d.text("property_title", &req.PropertyTitle)
		d.text("budget", &req.Budget)
		d.text("timeline", &req.Timeline)
		d.text("financing", &req.Financing)
	case leadrelay.FormChatbot:
		d.text("session_id", &req.SessionID)
		d.text("quality", &req.Quality)
		d.messages("messages", &req.Messages)
	}
	switch {
	case headerKey == "":
	case req.IdempotencyKey == "":
		req.IdempotencyKey = headerKey
	case req.IdempotencyKey != headerKey:
		d.bad["idempotency_key"] = "differs from the Idempotency-Key header"
	}
	if len(d.bad) > 0 {
		return leadRequest{}, &Error{Status: http.StatusBadRequest, Code: CodeInvalidLead, Message: "the lead has invalid fields", Fields: d.bad}
	}
	return req, nil
}

// fieldDecoder decodes the fields of one JSON object, collecting a reason
// for each field of the wrong type instead of stopping at the first. The
// fields of a nested object are reported under prefix, e.g. "messages[2].".
type fieldDecoder struct {
	raw    map[string]json.RawMessage
	bad    map[string]string
	prefix string
}

// value returns the field's JSON, or nil when it is missing or null.
func (d *fieldDecoder) value(key string) json.RawMessage {
	v := d.raw[key]
	if v == nil || string(v) == "null" {
		return nil
	}
	return v
}

func (d *fieldDecoder) text(key string, dst *string) {
	v := d.value(key)
	if v == nil {
		return
	}
	if v[0] != '"' || json.Unmarshal(v, dst) != nil {
		d.bad[d.prefix+key] = "must be a string"
		return
	}
	// Postgres text cannot hold NUL.
	if strings.ContainsRune(*dst, 0) {
		d.bad[d.prefix+key] = "must not contain the NUL character"
	}
}

// object decodes a JSON object, keeping numbers as written.
func (d *fieldDecoder) object(key string, dst *map[string]any) {
	v := d.value(key)
	if v == nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if v[0] != '{' || dec.Decode(dst) != nil {
		d.bad[d.prefix+key] = "must be a JSON object"
		return
	}
	if containsNUL(*dst) {
		d.bad[d.prefix+key] = "must not contain the NUL character"
	}
}

func (d *fieldDecoder) messages(key string, dst *[]chatMessage) {
	v := d.value(key)
	if v == nil {
		return
	}
	var items []json.RawMessage
	if v[0] != '[' || json.Unmarshal(v, &items) != nil {
		d.bad[d.prefix+key] = "must be an array"
		return
	}
	*dst = make([]chatMessage, len(items))
	for i, item := range items {
		name := fmt.Sprintf("%s%s[%d]", d.prefix, key, i)
		m := fieldDecoder{bad: d.bad, prefix: name + "."}
		if json.Unmarshal(item, &m.raw) != nil || m.raw == nil {
			d.bad[name] = "must be an object"
			continue
		}
		m.text("role", &(*dst)[i].Role)
		m.text("content", &(*dst)[i].Content)
		m.text("at", &(*dst)[i].At)
	}
}

// containsNUL reports whether any key or string in v holds a NUL, which a
// jsonb value cannot.
func containsNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, 0)
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, 0) || containsNUL(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if containsNUL(e) {
				return true
			}
		}
	}
	return false
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/database/dberr"
)

// lead is a lead as the website posted it, made the payload of
// public.submit_lead: the fields its form reads, the form and the
// idempotency key. Email and phone are kept for the log, which redacts them.
type lead struct {
	payload []byte
	email   string
	phone   string
}

// formFields are the fields each form reads; a body's other fields are
// ignored.
var formFields = func() map[leadrelay.Form][]string {
	common := []string{"name", "email", "phone", "message", "source", "metadata", "device_info", "idempotency_key"}
	return map[leadrelay.Form][]string{
		leadrelay.FormContact:         common,
		leadrelay.FormPropertyInquiry: append(slices.Clip(common), "property_id", "property_title", "budget", "timeline", "financing"),
		leadrelay.FormChatbot:         append(slices.Clip(common), "session_id", "quality", "messages"),
	}
}()

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
		l, err := decodeLead(form, body, r.Header.Get("Idempotency-Key"))
		if err != nil {
			return err
		}
		res, err := s.submitLead(r.Context(), l.payload)
		if err != nil {
			return err
		}
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "lead stored", slog.String("form", string(form)),
			slog.String("lead_id", res.ID), slog.Bool("created", res.Created), slog.String("quality", res.Quality),
			slog.Int("lead_score", res.LeadScore), slog.String("email", redactEmail(l.email)), slog.String("phone", redactPhone(l.phone)))
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
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeDatabaseUnavailable, Message: "the lead could not be stored right now; retry with the same Idempotency-Key", Err: err, RetryAfter: dberr.RetryAfter}
	default:
		return fmt.Errorf("submit_lead: %w", err)
	}
}

// decodeLead reads a lead of form from body. It checks what HTTP decoding
// needs: the body is one JSON object, and its values can be stored (jsonb
// holds no NUL character; invalid UTF-8 and lone surrogates become U+FFFD,
// as encoding/json reads them). What each field must be, its type included,
// is submit_lead's to say, in one place for this intake and PostgREST's RPC.
// Fields of other forms and unknown fields are ignored.
func decodeLead(form leadrelay.Form, body []byte, headerKey string) (lead, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		msg := "the body must be a JSON object"
		if syntaxErr, ok := errors.AsType[*json.SyntaxError](err); ok {
			msg = fmt.Sprintf("the body is not valid JSON: %v", syntaxErr)
		} else if errors.Is(err, io.ErrUnexpectedEOF) || len(bytes.TrimSpace(body)) == 0 {
			msg = "the body is not valid JSON: it ends too soon"
		}
		return lead{}, &Error{Status: http.StatusBadRequest, Code: CodeMalformedJSON, Message: msg}
	}
	// The payload is written field by field: every value is valid JSON
	// (json.Unmarshal checked the body) and every name a plain ASCII
	// constant, so encoding a map again would only repeat the checks.
	var payload bytes.Buffer
	payload.Grow(len(body) + len(form) + len(headerKey) + 48)
	payload.WriteString(`{"form":`)
	payload.Write(jsonString(string(form)))
	bad := map[string]string{}
	var email, phone string
	keyGiven := false
	for _, name := range formFields[form] {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			continue
		}
		v, err := storable(v)
		if err != nil {
			bad[name] = err.Error()
			continue
		}
		switch name {
		case "email":
			email = stringValue(v)
		case "phone":
			phone = stringValue(v)
		case "idempotency_key":
			if headerKey != "" && string(v) == `""` {
				continue // the header's key stands in for a blank one
			}
			if headerKey != "" && stringValue(v) != headerKey {
				bad[name] = "differs from the Idempotency-Key header"
				continue
			}
			keyGiven = true
		}
		payload.WriteString(`,"`)
		payload.WriteString(name)
		payload.WriteString(`":`)
		payload.Write(v)
	}
	if headerKey != "" && !keyGiven && bad["idempotency_key"] == "" {
		payload.WriteString(`,"idempotency_key":`)
		payload.Write(jsonString(headerKey))
	}
	payload.WriteByte('}')
	if len(bad) > 0 {
		return lead{}, &Error{Status: http.StatusBadRequest, Code: CodeInvalidLead, Message: "the lead has invalid fields", Fields: bad}
	}
	return lead{payload: payload.Bytes(), email: email, phone: phone}, nil
}

// jsonString is s as a JSON string.
func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// storable returns v as jsonb can store it: as it is when it has no escape
// and is valid UTF-8 (the usual case), else decoded and encoded again (numbers
// kept as written), refused when it holds a NUL.
func storable(v json.RawMessage) (json.RawMessage, error) {
	if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, fmt.Errorf("decode: %w", err) // json.Unmarshal accepted the body, so never
	}
	if containsNUL(value) {
		return nil, errors.New("must not contain the NUL character")
	}
	return json.Marshal(value)
}

// stringValue is v's string, or "" when v is not a JSON string.
func stringValue(v json.RawMessage) string {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
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

package server

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
)

// respondJSON writes v as JSON with the given status.
func respondJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// respondError turns an error into the JSON error answer, logging what the
// caller must not see.
func (s *server) respondError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	if e.Status >= 500 {
		s.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code, "err", err)
	} else {
		s.Logger.InfoContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code)
	}
	respondJSON(w, e.Status, map[string]*Error{"error": e})
}

package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	// A refusal (4xx) is the caller's to fix and logged without its cause; a 5xx is logged
	// with it, at ERROR unless it is no failure of the service's.
	level, msg := slog.LevelInfo, "request refused"
	switch {
	case e.NotReady:
		// The health registry logs each part's change once, and the intake its own failures;
		// a probe's every 503 at ERROR would page for every start-up and database restart.
		level, msg = slog.LevelWarn, "not ready"
	case r.Context().Err() != nil:
		// The client hung up while we worked (net/http ends the request's context when its
		// connection closes): nobody reads this answer, and it is no fault of the service's. A
		// lead may or may not be saved; the client's retry with the same key tells.
		level, msg = slog.LevelWarn, "the client went away before the answer"
	case e.Status >= 500:
		level, msg = slog.LevelError, "request failed"
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code}
	if level != slog.LevelInfo {
		attrs = append(attrs, "err", err)
	}
	s.Logger.Log(r.Context(), level, msg, attrs...)
	respondJSON(w, e.Status, map[string]*Error{"error": boundFields(e)})
}

// An error answer lists at most maxAnswerFields fields, each name at most
// maxFieldName bytes: the first ones tell the caller what to fix, and a body
// of thousands of bad items must not earn an answer many times its size.
const (
	maxAnswerFields = 20
	maxFieldName    = 100
)

// boundFields returns e, or a copy of it whose Fields are bounded, in the
// order a reader expects (messages[2] before messages[10]).
func boundFields(e *Error) *Error {
	long := false
	for name := range e.Fields {
		long = long || len(name) > maxFieldName
	}
	if len(e.Fields) <= maxAnswerFields && !long {
		return e
	}
	names := slices.SortedFunc(maps.Keys(e.Fields), naturalCompare)
	bounded := *e
	bounded.Fields = make(map[string]string, min(len(names), maxAnswerFields))
	for _, name := range names[:min(len(names), maxAnswerFields)] {
		shown := name
		if len(shown) > maxFieldName {
			shown = strings.ToValidUTF8(shown[:maxFieldName], "") + "…"
		}
		bounded.Fields[shown] = e.Fields[name]
	}
	if len(names) > maxAnswerFields {
		bounded.Message = fmt.Sprintf("%s (the first %d of %d are listed)", e.Message, maxAnswerFields, len(names))
	}
	return &bounded
}

// naturalCompare orders strings with their runs of digits compared as
// numbers.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

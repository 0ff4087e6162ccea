package server

import (
	"context"
	"crypto/rand"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
)

const requestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// withRequestID gives every request an id: the caller's X-Request-Id when it
// is a sane token (so one id follows a request from the website through the
// logs), else a new one. The answer carries it back.
func (s *server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// validRequestID accepts up to 128 characters of [A-Za-z0-9._:-]: enough for
// UUIDs and the ids proxies add, too little to stuff a log line with.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// requestIDLogHandler adds the request id of the context to every record
// logged with one, so no log call has to remember it.
type requestIDLogHandler struct{ slog.Handler }

func (h requestIDLogHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDLogHandler) WithGroup(name string) slog.Handler {
	return requestIDLogHandler{h.Handler.WithGroup(name)}
}

// statusRecorder remembers the status and size of an answer for the access log and the metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (rec *statusRecorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *statusRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// logAccess logs one line per request and, with metrics, counts the answer
// by method, route (routeOf) and status, and times it. It logs no body and
// no query, so no email or phone number reaches the log from here.
func (s *server) logAccess(router *httprouter.Router, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		took := time.Since(start)
		s.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status), slog.Int("bytes", rec.bytes),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000), slog.String("client", s.clientAddress(r).String()))
		if s.Metrics != nil {
			s.Metrics.ObserveRequest(r.Method, routeOf(router, r), rec.status, took)
		}
	})
}

// recoverPanics turns a panic into a logged 500, so one bad request cannot
// take the process down with the other requests in flight.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // the server's own way to abort a response
				panic(v)
			}
			s.Logger.ErrorContext(r.Context(), "panic serving request", "panic", v, "stack", string(debug.Stack()))
			s.respondError(w, r, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// The headers a browser may send to the intake: the body's type, the retry
// key, and the request id that ties the website's logs to ours.
const (
	corsAllowHeaders  = "Content-Type, Idempotency-Key, X-Request-Id"
	corsAllowMethods  = "GET, POST, OPTIONS"
	corsExposeHeaders = "X-Request-Id, Retry-After"
)

// cors lets browsers on FRONTEND_URL's origins call the API. Requests
// without an Origin (curl, servers) pass untouched: CORS binds browsers only.
func (s *server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := s.origins[strings.ToLower(origin)]
		h := w.Header()
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Origin")
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				s.respondError(w, r, &Error{Status: http.StatusForbidden, Code: CodeOriginNotAllowed, Message: "this origin may not call the API; set FRONTEND_URL"})
				return
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Add("Vary", "Origin")
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// maxIntakeBody bounds a lead's body: a long chat transcript fits many times.
const maxIntakeBody = 64 << 10

// requireJSON refuses a body that is not UTF-8 JSON (415) or that is larger
// than maxIntakeBody (413), before anything reads it.
func (s *server) requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mediaType != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			s.respondError(w, r, &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMediaType, Message: "send the lead as JSON, with Content-Type: application/json"})
			return
		}
		if r.ContentLength > maxIntakeBody {
			s.respondError(w, r, errBodyTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxIntakeBody)
		next.ServeHTTP(w, r)
	})
}

var errBodyTooLarge = &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeBodyTooLarge, Message: "the body is larger than 64 KiB"}

package server

import (
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay/ops/metrics"
)

// metrics serves Prometheus' scrape on the service's own port only behind
// METRICS_TOKEN: the figures are the business's, and a public scrape would
// be free load. METRICS_ADDR serves them on an address of their own instead.
func (s *server) metrics(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	if s.Metrics == nil || s.Edge.MetricsToken == "" || s.Edge.MetricsAddr != "" {
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: "metrics are not served on this port (METRICS_ADDR serves them on an address of their own; METRICS_TOKEN here, behind a Bearer token)"}
	}
	if !metrics.Authorized(s.Edge.MetricsToken, r) {
		w.Header().Set("WWW-Authenticate", metrics.Challenge)
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: metrics.Refused}
	}
	s.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

// routeOf is the pattern of the route r matches, or "unmatched": the
// metrics' route label (/admin/events/:id/replay), so a path full of ids
// makes no new series; paths no route matches count as one.
func routeOf(router *httprouter.Router, r *http.Request) string {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	h, params, _ := router.Lookup(method, r.URL.Path)
	if h == nil {
		return "unmatched"
	}
	segments := strings.Split(r.URL.Path, "/")
	for _, p := range params {
		for i, seg := range segments {
			if seg == p.Value && !strings.HasPrefix(seg, ":") {
				segments[i] = ":" + p.Key
				break
			}
		}
	}
	return strings.Join(segments, "/")
}

package server

import "github.com/julienschmidt/httprouter"

// routes lists every route the service answers.
func (s *server) routes(r *httprouter.Router) {
	r.GET("/healthz", s.handle(s.healthz))
	r.GET("/readyz", s.handle(s.readyz))
}

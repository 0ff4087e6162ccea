package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"

	"github.com/truenester/leadrelay"
)

// routes lists every route the service answers.
func (s *server) routes(r *httprouter.Router) {
	r.Handler(http.MethodGet, "/healthz", s.handle(s.healthz))
	r.Handler(http.MethodGet, "/readyz", s.handle(s.readyz))
	r.Handler(http.MethodGet, "/metrics", s.handle(s.metrics))

	// The website's forms: limited per client address, JSON bodies only.
	intake := func(form leadrelay.Form) http.Handler {
		return s.limitRate(s.requireJSON(s.handle(s.intake(form))))
	}
	r.Handler(http.MethodPost, "/api/submit-contact", intake(leadrelay.FormContact))
	r.Handler(http.MethodPost, "/api/property-inquiry", intake(leadrelay.FormPropertyInquiry))
	r.Handler(http.MethodPost, "/api/chatbot/leads", intake(leadrelay.FormChatbot))

	// The database webhook (pg_net): signed, so no rate limit.
	r.Handler(http.MethodPost, "/webhooks/lead-events", s.handle(s.leadEventWebhook))

	// The admin API: Bearer ADMIN_API_KEY or a Supabase admin's access token.
	admin := func(h handlerFunc) http.Handler { return s.requireAdmin(s.handle(h)) }
	r.Handler(http.MethodPost, "/admin/events/:id/replay", admin(s.replayEvent))
	r.Handler(http.MethodGet, "/admin/sla/alerts", admin(s.slaAlerts))
	r.Handler(http.MethodGet, "/admin/sla/summary", admin(s.slaSummary))
	r.Handler(http.MethodGet, "/admin/api/leads", admin(s.apiLeads))
	r.Handler(http.MethodGet, "/admin/api/leads/:id", admin(s.apiLead))
	r.Handler(http.MethodPost, "/admin/api/leads/:id/:action", admin(s.apiLeadAction))
	r.Handler(http.MethodPost, "/admin/api/followups/:id/:action", admin(s.apiFollowUpAction))
	r.Handler(http.MethodGet, "/admin/api/deliveries", admin(s.apiDeliveries))
	r.Handler(http.MethodPost, "/admin/api/deliveries/replay", admin(s.apiReplayFailed))

	// The admin console's pages (session cookie and CSRF token): package console. Sign-in
	// attempts count against the client address's rate limit, so a key cannot be guessed
	// at speed.
	for _, rt := range s.Console.Routes() {
		h := rt.Handler
		if rt.Method == http.MethodPost && rt.Path == "/admin/login" {
			h = s.limitRate(h)
		}
		r.Handler(rt.Method, rt.Path, h)
	}
}

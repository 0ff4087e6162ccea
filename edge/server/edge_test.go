package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/truenester/leadrelay/dev/testkit"
)

func TestCORSPreflightAllowsTheFrontendOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, map[string]string{"FRONTEND_URL": "https://truenester.com,https://www.truenester.com"})
	preflight := func(origin string) answer {
		req := testkit.NewRequest(t, http.MethodOptions, b.url+"/api/submit-contact")
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,idempotency-key,x-request-id")
		return do(t, req)
	}
	a := preflight("https://www.truenester.com")
	if a.status != http.StatusNoContent {
		t.Fatalf("preflight: %d %s", a.status, a.body)
	}
	if got := a.header.Get("Access-Control-Allow-Origin"); got != "https://www.truenester.com" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	allowed := strings.ToLower(a.header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"content-type", "idempotency-key", "x-request-id"} {
		if !strings.Contains(allowed, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allowed, h)
		}
	}
	if !strings.Contains(a.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("Access-Control-Allow-Methods %q lacks POST", a.header.Get("Access-Control-Allow-Methods"))
	}

	a = preflight("https://evil.example")
	a.error(t, http.StatusForbidden, "origin_not_allowed")
	if got := a.header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("a foreign origin was allowed: %q", got)
	}

	// The actual request: the browser may read the answer and its request id.
	ok := b.post(t, "/api/submit-contact", `{"email": "cors@example.com"}`, "Origin", "https://truenester.com")
	ok.lead(t, http.StatusCreated)
	if ok.header.Get("Access-Control-Allow-Origin") != "https://truenester.com" ||
		!strings.Contains(ok.header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("CORS headers on the answer: %v", ok.header)
	}
	foreign := b.post(t, "/api/submit-contact", `{"email": "cors2@example.com"}`, "Origin", "https://evil.example")
	if foreign.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a foreign origin may read the answer: %v", foreign.header)
	}
}

func TestTheRequestIDIsEchoedAndLogged(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	a := b.post(t, "/api/submit-contact", `{"email": "rid@example.com"}`, "X-Request-Id", "web-3f9c2a")
	a.lead(t, http.StatusCreated)
	if got := a.header.Get("X-Request-Id"); got != "web-3f9c2a" {
		t.Errorf("X-Request-Id %q, want the caller's", got)
	}
	seen := map[string]bool{}
	for _, rec := range logLines(t, b.logs) {
		if rec["request_id"] == "web-3f9c2a" {
			seen[rec["msg"].(string)] = true
		}
	}
	if !seen["request"] || !seen["lead stored"] {
		t.Errorf("log lines with the request id: %v, want the access line and the lead line", seen)
	}

	// Without one, or with one unfit for a log, each request gets its own.
	first := b.post(t, "/api/submit-contact", `{}`).header.Get("X-Request-Id")
	second := b.post(t, "/api/submit-contact", `{}`, "X-Request-Id", "two words; <script>").header.Get("X-Request-Id")
	if first == "" || second == "" || first == second || strings.ContainsAny(second, " <") {
		t.Errorf("generated ids %q, %q", first, second)
	}
	for _, rec := range logLines(t, b.logs) {
		if rec["msg"] == "request" && rec["request_id"] == nil {
			t.Errorf("access log line without a request id: %v", rec)
		}
	}
}

func TestLogsNeverHoldAFullEmailOrPhone(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.post(t, "/api/submit-contact", `{"name": "Jane", "email": "jane.doe@example.com", "phone": "+971 50 123 4567"}`).lead(t, http.StatusCreated)
	b.post(t, "/api/submit-contact", `{"name": "Jane", "email": "jane.doe@example.com", "phone": "+971 50 123 4567"}`).lead(t, http.StatusOK)
	b.post(t, "/api/property-inquiry", `{"email": "jane.doe@example", "phone": "0501234567", "metadata": {"country": "AE"}}`).
		error(t, http.StatusBadRequest, "invalid_lead")
	b.post(t, "/api/chatbot/leads", `{"email": "jane.doe@example.com", "phone": 971501234567}`).error(t, http.StatusBadRequest, "invalid_lead")

	logs := b.logs.String()
	for _, secret := range []string{"jane.doe", "1234567", "123 4567"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, "j***@example.com") || !strings.Contains(logs, "+97150***67") {
		t.Errorf("the log does not hold the redacted contact:\n%s", logs)
	}
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	do(t, testkit.NewRequest(t, http.MethodGet, b.url+"/api/nope")).error(t, http.StatusNotFound, "not_found")
	do(t, testkit.NewRequest(t, http.MethodGet, b.url+"/api/submit-contact")).error(t, http.StatusMethodNotAllowed, "method_not_allowed")
	for _, path := range []string{"/healthz", "/readyz"} {
		if a := do(t, testkit.NewRequest(t, http.MethodGet, b.url+path)); a.status != http.StatusOK {
			t.Errorf("%s: %d %s", path, a.status, a.body)
		}
	}
	// Under /admin, a browser gets the console's page; the API's callers JSON.
	do(t, testkit.NewRequest(t, http.MethodGet, b.url+"/admin/nope")).error(t, http.StatusNotFound, "not_found")
	req := testkit.NewRequest(t, http.MethodGet, b.url+"/admin/nope")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if a := do(t, req); a.status != http.StatusNotFound || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(a.body), "There is no such page in the console.") {
		t.Errorf("a browser's unknown console page: %d %s\n%.500s", a.status, a.header.Get("Content-Type"), a.body)
	}
}

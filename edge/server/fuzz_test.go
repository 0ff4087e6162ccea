package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzIntake posts arbitrary bodies, content types and idempotency keys to
// the three endpoints. Whatever arrives, the answer is a lead or a 4xx that
// says why, in JSON: never a 500, never a panic. The seeds run as a normal
// test; `go test -fuzz=FuzzIntake ./edge/server/` explores further.
func FuzzIntake(f *testing.F) {
	b := setup(f, map[string]string{"RATE_LIMIT_PER_MINUTE": "1000000000", "RATE_LIMIT_BURST": "1000000000"})
	const jsonType = "application/json"
	seeds := []struct {
		route       uint8
		contentType string
		body        string
		key         string
	}{
		{0, jsonType, `{"name": "Jane", "email": "jane@example.com", "phone": "050 123 4567", "message": "hi", "metadata": {"country": "AE"}}`, ""},
		{0, jsonType, `{"name": "Jane", "email": "jane@example.com", "message": "hi"}`, "key-1"},
		{1, jsonType, `{"email": "a@b.co", "property_id": 42, "budget": 1e400, "timeline": "asap", "financing": "cash"}`, ""},
		{1, jsonType, `{"phone": "+14155550100", "property_id": "-0", "budget": -12.5e-3}`, ""},
		{2, jsonType, `{"session_id": "s", "email": "a@b.co", "quality": "hot", "messages": [{"role": "user", "content": "hi", "at": "2026-01-01T00:00:00Z"}, {"role": "assistant", "content": "hello"}]}`, ""},
		{2, jsonType, `{"email": "a@b.co", "messages": [{"role": "user", "content": "x", "at": "infinity"}, {"role": "assistant", "content": "y", "at": "epoch"}]}`, ""},
		{2, jsonType, `{"email": "a@b.co", "messages": [null, 1, "x", [], {"role": null}]}`, ""},
		{0, jsonType, `{"email": 1, "phone": [], "metadata": "x", "device_info": 2}`, ""},
		{0, jsonType, `{"email": "a@b.co", "metadata": {"nested": {"deep": [1, 2, {"x": null}]}, "big": 123456789012345678901234567890}}`, ""},
		{0, jsonType, `{"email": "a@b.co", "name": "\u0000", "metadata": {"\u0000": 1}}`, ""},
		{0, jsonType, "{\"email\": \"a@b.co\", \"name\": \"\xff\xfe invalid utf-8\"}", ""},
		{0, jsonType, `{"email": "a@b.co", "message": "\ud800 lone surrogate"}`, ""},
		{0, jsonType, `{"email": "a@b.co", "email": "dup@b.co"}`, ""},
		{0, jsonType, `{"email": "a@b.co", "metadata": {"country": "` + strings.Repeat("A", 9000) + `"}}`, ""},
		{0, jsonType, `{"email": "a@b.co", "metadata": {"d": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`, ""},
		{0, jsonType, `{"email": "a@b.co", "metadata": {"d": ` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`, ""},
		{0, jsonType, `{"email": "a@b.co"}`, strings.Repeat("k", 300)},
		{0, jsonType, `{"email": "a@b.co", "idempotency_key": "a"}`, "b"},
		{1, jsonType, `{"email": "` + strings.Repeat("e", 300) + `@x.co", "quality": "hot"}`, ""},
		{0, jsonType, `{"name": "x"`, ""},
		{0, jsonType, ``, ""},
		{0, jsonType, `null`, ""},
		{0, jsonType, `[]`, ""},
		{0, jsonType, `{} trailing`, ""},
		{0, "text/plain", `{"email": "a@b.co"}`, ""},
		{0, "application/json; charset=utf-16", `{"email": "a@b.co"}`, ""},
		{0, "application/json; charset", `{"email": "a@b.co"}`, ""},
		{1, jsonType, `{"email": "a@b.co", "property_id": "` + strings.Repeat("p", 70000) + `"}`, ""},
	}
	for _, s := range seeds {
		f.Add(s.route, s.contentType, []byte(s.body), s.key)
	}
	routes := []string{"/api/submit-contact", "/api/property-inquiry", "/api/chatbot/leads"}
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte, key string) {
		if !validHeaderValue(contentType) || !validHeaderValue(key) {
			t.Skip("a header value no HTTP client can send")
		}
		req, err := http.NewRequest(http.MethodPost, b.url+routes[int(route)%len(routes)], bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		a := do(t, req)
		switch a.status {
		case http.StatusOK, http.StatusCreated:
			var l lead
			if err := json.Unmarshal(a.body, &l); err != nil || l.ID == "" {
				t.Fatalf("%d without a lead id: %s", a.status, a.body)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			var e apiError
			if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%d without an error code and message: %s", a.status, a.body)
			}
		default:
			t.Fatalf("status %d for %q %q: %s\nlog:\n%s", a.status, contentType, body, a.body, b.logs.String())
		}
	})
}

// validHeaderValue reports whether net/http sends v as a header value.
func validHeaderValue(v string) bool {
	for _, c := range []byte(v) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return strings.TrimSpace(v) == v
}

package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// The case: a 65 KB body of 32,700 bad messages once got a 1.23 MB
// answer. The answer names the first bad fields, in order, and stays small.
func TestThousandsOfBadItemsGetASmallAnswer(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	body := `{"email": "a@b.co", "messages": [` + strings.Repeat("1,", 32_699) + `1]}`
	a := b.post(t, "/api/chatbot/leads", body)
	e := a.error(t, http.StatusBadRequest, "invalid_lead")
	if len(a.body) > 4096 {
		t.Errorf("a %d-byte answer to a %d-byte body", len(a.body), len(body))
	}
	if len(e.Error.Fields) == 0 || len(e.Error.Fields) > 20 {
		t.Errorf("%d fields listed, want 1 to 20", len(e.Error.Fields))
	}
	t.Logf("%d-byte body: %d-byte answer: %s", len(body), len(a.body), a.body)
}

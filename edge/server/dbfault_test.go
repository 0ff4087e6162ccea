package server_test

import (
	"context"
	"net/http"
	"testing"
)

// A sequence at its maximum (the setval attack, now closed to the API
// roles, or plain exhaustion) is the database's fault: the website gets a 503
// to retry, not a 400 that blames the visitor, and nothing is half-written.
func TestASequenceAtItsMaximumIsA503(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if _, err := b.db.Exec(context.Background(), "select setval('public.chat_messages_seq_seq', 9223372036854775807)"); err != nil {
		t.Fatal(err)
	}
	a := b.post(t, "/api/chatbot/leads", `{"email": "seq@example.com", "messages": [{"role": "user", "content": "hi"}]}`, "Idempotency-Key", "seq-1")
	a.error(t, http.StatusServiceUnavailable, "database_unavailable")
	assertRetryAfter(t, a)
	if n := b.count(t, "select count(*) from conversations"); n != 0 {
		t.Errorf("%d leads stored, want none", n)
	}
}

// Message times at infinity or in 4714 BC are refused, naming the field.
func TestMessageTimesOutOfRangeAreRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	e := b.post(t, "/api/chatbot/leads", `{"email": "at@example.com", "messages": [
		{"role": "user", "content": "a", "at": "infinity"},
		{"role": "user", "content": "b", "at": "4714-11-24T00:00:00Z BC"},
		{"role": "user", "content": "c", "at": "2026-11-24T10:00:00Z"}]}`).error(t, http.StatusBadRequest, "invalid_lead")
	for _, field := range []string{"messages[0].at", "messages[1].at"} {
		if e.Error.Fields[field] == "" {
			t.Errorf("fields %v do not name %s", e.Error.Fields, field)
		}
	}
	if _, ok := e.Error.Fields["messages[2].at"]; ok {
		t.Errorf("a time in range was refused: %v", e.Error.Fields)
	}
}

package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/truenester/leadrelay"
)

// FuzzDecodeLead feeds the intake's decoder any body a client can send
// within the body limit. It never panics; it returns a lead or a 400 that
// says why (malformed_json, invalid_lead naming the fields), and the answer a
// client gets stays small whatever the body. The seeds, the cases
// among them, live in testdata/fuzz/FuzzDecodeLead; `go test
// -fuzz=FuzzDecodeLead ./edge/server/` explores further, without a database.
func FuzzDecodeLead(f *testing.F) {
	f.Add(uint8(2), []byte(`{"email": "a@b.co", "messages": [{"role": "user", "content": "hi", "at": "infinity"}]}`), "")
	f.Add(uint8(0), []byte(`{"email": "a@b.co", "idempotency_key": "a"}`), "b")
	forms := []leadrelay.Form{leadrelay.FormContact, leadrelay.FormPropertyInquiry, leadrelay.FormChatbot}
	f.Fuzz(func(t *testing.T, form uint8, body []byte, key string) {
		if len(body) > maxIntakeBody {
			t.Skip("over the body limit: refused before decoding")
		}
		_, err := decodeLead(forms[int(form)%len(forms)], body, key)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || (e.Code != "malformed_json" && e.Code != "invalid_lead") {
			t.Fatalf("decodeLead: %v, want a 400 malformed_json or invalid_lead", err)
		}
		if e.Code == "invalid_lead" && len(e.Fields) == 0 {
			t.Fatalf("invalid_lead naming no field: %v", err)
		}
		answer, err := json.Marshal(map[string]*Error{"error": boundFields(e)})
		if err != nil {
			t.Fatal(err)
		}
		if len(answer) > 8<<10 {
			t.Fatalf("a %d-byte answer to a %d-byte body", len(answer), len(body))
		}
	})
}

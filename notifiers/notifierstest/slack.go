package notifierstest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Slack answers as a Slack incoming webhook: 200 "ok" to a valid message
// posted to its hook path; 404 no_service to any other path; 400
// invalid_payload, no_text or invalid_blocks to a body Slack would refuse;
// else the refusal the test set up (403 invalid_token, 410
// channel_is_archived, 429 with Retry-After, 500).
type Slack struct {
	*httpPeer
	URL string // the webhook URL to configure
}

const slackHookPath = "/services/T000/B000/XXXX"

// Slack's own limits, which it enforces by refusing the message: a header's
// text is at most 150 characters, a section at most 10 fields.
const (
	slackHeaderMax = 150
	slackFieldsMax = 10
)

// NewSlack starts a Slack peer, stopped when the test ends.
func NewSlack(t testing.TB) *Slack {
	s := &Slack{httpPeer: newHTTPPeer(t, slack{})}
	s.URL = s.server.URL + slackHookPath
	return s
}

type slack struct{}

func (slack) check(r *http.Request, body []byte) *Answer {
	if r.URL.Path != slackHookPath {
		return &Answer{Status: http.StatusNotFound, Body: "no_service"}
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return &Answer{Status: http.StatusBadRequest, Body: "invalid_payload"}
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			Fields []json.RawMessage `json:"fields"`
		} `json:"blocks"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return &Answer{Status: http.StatusBadRequest, Body: "invalid_payload"}
	}
	if msg.Text == "" && len(msg.Blocks) == 0 {
		return &Answer{Status: http.StatusBadRequest, Body: "no_text"}
	}
	for _, b := range msg.Blocks {
		if b.Type == "header" && (b.Text == nil || b.Text.Type != "plain_text" || len([]rune(b.Text.Text)) > slackHeaderMax) ||
			len(b.Fields) > slackFieldsMax {
			return &Answer{Status: http.StatusBadRequest, Body: "invalid_blocks"}
		}
	}
	return nil
}

func (slack) refuse(w http.ResponseWriter, a Answer) {
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(a.RetryAfter))
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(a.Status)
	io.WriteString(w, a.Body)
}

func (slack) ok(w http.ResponseWriter, _ int) {
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "ok")
}

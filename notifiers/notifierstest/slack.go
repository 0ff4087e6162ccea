package notifierstest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
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

// Slack's documented limits, which it enforces by refusing the message
// (invalid_blocks), counted in characters of the text as sent, escapes
// included: a header's text at most 150, a section at most 10 fields of at
// most 2,000 each and a text of at most 3,000, at most 50 blocks; the
// top-level text at most 40,000. Characters are counted as UTF-16 code
// units, the strictest reading.
const (
	slackHeaderMax      = 150
	slackFieldsMax      = 10
	slackFieldMax       = 2000
	slackSectionTextMax = 3000
	slackBlocksMax      = 50
	slackTextMax        = 40000
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
	if code := CheckSlackMessage(body); code != "" {
		return &Answer{Status: http.StatusBadRequest, Body: code}
	}
	return nil
}

// CheckSlackMessage judges a message body as Slack does: "" when Slack takes
// it, else the error code of its 400 (invalid_payload, no_text,
// invalid_blocks). Fuzz tests of the renderer use it without a server.
func CheckSlackMessage(body []byte) string {
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			Fields []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"fields"`
		} `json:"blocks"`
	}
	if json.Unmarshal(body, &msg) != nil {
		return "invalid_payload"
	}
	if msg.Text == "" && len(msg.Blocks) == 0 {
		return "no_text"
	}
	if utf16Len(msg.Text) > slackTextMax || len(msg.Blocks) > slackBlocksMax {
		return "invalid_blocks"
	}
	for _, b := range msg.Blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" || b.Text.Text == "" || utf16Len(b.Text.Text) > slackHeaderMax {
				return "invalid_blocks"
			}
		case "section":
			if b.Text == nil && len(b.Fields) == 0 || len(b.Fields) > slackFieldsMax ||
				b.Text != nil && (b.Text.Text == "" || utf16Len(b.Text.Text) > slackSectionTextMax) {
				return "invalid_blocks"
			}
			for _, f := range b.Fields {
				if f.Text == "" || utf16Len(f.Text) > slackFieldMax || f.Type != "mrkdwn" && f.Type != "plain_text" {
					return "invalid_blocks"
				}
			}
		default:
			return "invalid_blocks"
		}
	}
	return ""
}

// utf16Len counts characters as UTF-16 code units: an emoji outside the
// BMP is two, as Slack and Telegram count it.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
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

package notifiers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/truenester/leadrelay"
)

// Slack posts alerts to a Slack incoming webhook as Block Kit, with a text
// fallback for notifications.
//
// notify's slack service posts with a bot token to chat.postMessage, not to
// an incoming webhook, so this sender goes through notify's http service
// (see postOnce) instead.
type Slack struct {
	url    string
	client *http.Client
}

func NewSlack(cfg SlackConfig) (*Slack, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	return &Slack{url: cfg.WebhookURL, client: clientOrDefault(cfg.Client)}, nil
}

func (s *Slack) Channel() leadrelay.Channel { return leadrelay.ChannelSlack }

func (s *Slack) Send(ctx context.Context, a Alert) error {
	body, err := json.Marshal(slackPayload(render(a)))
	if err != nil {
		return &DeliveryError{Channel: leadrelay.ChannelSlack, Permanent: true, Err: fmt.Errorf("encode: %w", err)}
	}
	reply, err := postOnce(ctx, s.client, s.url, "application/json; charset=utf-8", nil, body)
	if err != nil {
		return connFailure(leadrelay.ChannelSlack, fmt.Errorf("post: %w", err))
	}
	if reply.Status >= 200 && reply.Status < 300 {
		return nil
	}
	// Slack answers an error with a short code as plain text
	// ("invalid_token", "channel_is_archived").
	return httpFailure(leadrelay.ChannelSlack, reply.Status, string(reply.Body), retryAfterHeader(reply.Header, time.Now()))
}

// Block Kit, only the parts we use.
type (
	slackMessage struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}
	slackBlock struct {
		Type   string      `json:"type"`
		Text   *slackText  `json:"text,omitempty"`
		Fields []slackText `json:"fields,omitempty"`
	}
	slackText struct {
		Type string `json:"type"` // plain_text or mrkdwn
		Text string `json:"text"`
	}
)

// Slack's limits: a header's text is at most 150 characters, a section at
// most 10 fields.
const (
	slackHeaderMax = 150
	slackFieldsMax = 10
)

func slackPayload(m message) slackMessage {
	// The fallback text is mrkdwn too: it shows in notifications.
	msg := slackMessage{Text: slackEscape(m.Headline)}
	msg.Blocks = append(msg.Blocks, slackBlock{
		Type: "header",
		// plain_text shows characters as they are: nothing to escape.
		Text: &slackText{Type: "plain_text", Text: clip(m.Headline, slackHeaderMax)},
	})
	if len(m.Fields) > 0 {
		section := slackBlock{Type: "section"}
		for i, f := range m.Fields {
			if i == slackFieldsMax {
				break
			}
			section.Fields = append(section.Fields, slackText{
				Type: "mrkdwn",
				Text: "*" + f.Label + "*\n" + slackEscape(f.Value),
			})
		}
		msg.Blocks = append(msg.Blocks, section)
	}
	if m.Link != "" {
		// A mrkdwn link rather than a button: Slack rejects the whole
		// message (invalid_blocks, permanent) for a button URL it
		// dislikes, such as a development host.
		link := "<" + slackEscape(m.Link) + "|" + linkLabel + ">"
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: link}})
		msg.Text += "\n" + link
	}
	return msg
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to,
// so a lead named "<!channel>" cannot ping everyone or forge a link.
func slackEscape(s string) string { return slackEscaper.Replace(s) }

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/jonboulle/clockwork"
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
	clock  clockwork.Clock
}

func NewSlack(cfg SlackConfig) (*Slack, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	return &Slack{url: cfg.WebhookURL, client: clientOrDefault(cfg.Client), clock: clockOrReal(cfg.Clock)}, nil
}

func (s *Slack) Channel() leadrelay.Channel { return leadrelay.ChannelSlack }

func (s *Slack) Send(ctx context.Context, a Alert) error {
	m := render(a)
	err := s.post(ctx, slackPayload(m))
	var refused *DeliveryError
	if !errors.As(err, &refused) || !slackContentRefused(refused) {
		return err
	}
	// Slack refused the blocks themselves: the alert still goes out, once,
	// as plain text, before anything is called permanent.
	return fellBack(s.post(ctx, slackPlainPayload(m)), refused)
}

func (s *Slack) post(ctx context.Context, msg slackMessage) error {
	body, err := json.Marshal(msg)
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
	return httpFailure(leadrelay.ChannelSlack, reply.Status, string(reply.Body), retryAfterHeader(reply.Header, s.clock.Now()))
}

// slackContentRefused says Slack refused what the message holds, not who
// sent it or where: a plain-text message may still pass.
func slackContentRefused(e *DeliveryError) bool {
	switch e.Response {
	case "invalid_blocks", "invalid_blocks_format", "invalid_payload":
		return e.Status == http.StatusBadRequest
	}
	return false
}

// Block Kit, only the parts we use.
type (
	slackMessage struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks,omitempty"`
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

// Slack's limits, in characters of the text as sent (escapes included):
// Slack refuses the whole message (invalid_blocks) over them.
const (
	slackHeaderMax      = 150  // a header block's plain_text
	slackFieldsMax      = 10   // fields in a section
	slackFieldMax       = 2000 // one field's text
	slackSectionTextMax = 3000 // a section's text
	slackTextMax        = 3000 // the top-level text; Slack takes 40,000 but shows far less
)

func slackPayload(m message) slackMessage {
	// The fallback text is mrkdwn too: it shows in notifications.
	msg := slackMessage{Text: clipEscaped(m.Headline, slackTextMax, slackEscape, utf16Len)}
	msg.Blocks = append(msg.Blocks, slackBlock{
		Type: "header",
		// plain_text shows characters as they are: nothing to escape.
		Text: &slackText{Type: "plain_text", Text: clipEscaped(m.Headline, slackHeaderMax, plain, utf16Len)},
	})
	if len(m.Fields) > 0 {
		section := slackBlock{Type: "section"}
		for i, f := range m.Fields {
			if i == slackFieldsMax {
				break
			}
			label := "*" + f.Label + "*\n"
			text := label + clipEscaped(f.Value, slackFieldMax-utf16Len(label), slackEscape, utf16Len)
			if f.Tel != "" { // a verified E.164 number: short, only + and digits
				text = label + "<" + f.Tel + "|" + f.Value + ">"
			}
			section.Fields = append(section.Fields, slackText{Type: "mrkdwn", Text: text})
		}
		msg.Blocks = append(msg.Blocks, section)
	}
	if link := slackLink(m.Link); link != "" {
		// A mrkdwn link rather than a button: Slack rejects the whole
		// message (invalid_blocks) for a button URL it dislikes, such as a
		// development host.
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: link}})
		if utf16Len(msg.Text)+1+utf16Len(link) <= slackTextMax {
			msg.Text += "\n" + link
		}
	}
	return msg
}

// slackPlainPayload is the fallback: the message as text alone, no blocks.
func slackPlainPayload(m message) slackMessage {
	link := slackLink(m.Link)
	m.Link = ""
	text := clipEscaped(m.plainText(), slackTextMax-utf16Len(link)-2, slackEscape, utf16Len)
	if link != "" {
		text += "\n\n" + link
	}
	return slackMessage{Text: text}
}

// slackLink is a mrkdwn link to the admin panel, or "" when there is none
// or it would not fit a section.
func slackLink(url string) string {
	if url == "" {
		return ""
	}
	link := "<" + slackEscape(url) + "|" + linkLabel + ">"
	if utf16Len(link) > slackSectionTextMax {
		return ""
	}
	return link
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to,
// so a lead named "<!channel>" cannot ping everyone or forge a link.
func slackEscape(s string) string { return slackEscaper.Replace(s) }

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

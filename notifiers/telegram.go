package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
)

// Telegram sends alerts with the Bot API's sendMessage, in HTML parse mode.
//
// notify's telegram service cannot be used: its constructor calls getMe on
// the fixed api.telegram.org (no base URL to point tests at), its Send
// takes no context, and chat ids must be numbers (no @channelname). So this
// sender goes through notify's http service (see postOnce).
type Telegram struct {
	url    string // <base>/bot<token>/sendMessage: holds the token, never shown
	chatID string
	client *http.Client
	clock  clockwork.Clock
}

func NewTelegram(cfg TelegramConfig) (*Telegram, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	return &Telegram{
		url:    strings.TrimRight(cfg.APIBaseURL, "/") + "/bot" + cfg.BotToken + "/sendMessage",
		chatID: cfg.ChatID,
		client: clientOrDefault(cfg.Client),
		clock:  clockOrReal(cfg.Clock),
	}, nil
}

func (t *Telegram) Channel() leadrelay.Channel { return leadrelay.ChannelTelegram }

type telegramRequest struct {
	ChatID             string `json:"chat_id"`
	Text               string `json:"text"`
	ParseMode          string `json:"parse_mode,omitempty"` // "": plain text
	LinkPreviewOptions struct {
		IsDisabled bool `json:"is_disabled"`
	} `json:"link_preview_options"`
}

// telegramReply is the Bot API's envelope: ok, and on failure an error_code,
// a description and sometimes parameters.retry_after.
type telegramReply struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

func (t *Telegram) Send(ctx context.Context, a Alert) error {
	m := render(a)
	err := t.post(ctx, telegramHTML(m), "HTML")
	var refused *DeliveryError
	if !errors.As(err, &refused) || !telegramContentRefused(refused) {
		return err
	}
	// Telegram could not take the markup: the alert still goes out, once,
	// as plain text (no parse mode: nothing in it is markup), before
	// anything is called permanent.
	return fellBack(t.post(ctx, clipEscaped(m.plainText(), telegramTextMax, plain, utf16Len), ""), refused)
}

func (t *Telegram) post(ctx context.Context, text, parseMode string) error {
	req := telegramRequest{ChatID: t.chatID, Text: text, ParseMode: parseMode}
	req.LinkPreviewOptions.IsDisabled = true
	body, err := json.Marshal(req)
	if err != nil {
		return &DeliveryError{Channel: leadrelay.ChannelTelegram, Permanent: true, Err: fmt.Errorf("encode: %w", err)}
	}
	reply, err := postOnce(ctx, t.client, t.url, "application/json", nil, body)
	if err != nil {
		return connFailure(leadrelay.ChannelTelegram, fmt.Errorf("sendMessage: %w", err))
	}

	var r telegramReply
	if err := json.Unmarshal(reply.Body, &r); err != nil {
		// Not the Bot API speaking (a proxy's error page, say): judge by
		// the HTTP status alone.
		if reply.Status >= 200 && reply.Status < 300 {
			return &DeliveryError{Channel: leadrelay.ChannelTelegram, Status: reply.Status, Err: errors.New("sendMessage: reply is not Bot API JSON")}
		}
		return httpFailure(leadrelay.ChannelTelegram, reply.Status, string(reply.Body), retryAfterHeader(reply.Header, t.clock.Now()))
	}
	if r.OK {
		return nil
	}
	status := r.ErrorCode
	if status == 0 {
		status = reply.Status
	}
	if status < 400 {
		// ok:false without an error code says nothing certain: retry.
		return &DeliveryError{Channel: leadrelay.ChannelTelegram, Status: status, Response: r.Description,
			Err: fmt.Errorf("sendMessage: ok is false: %s", clip(r.Description, maxResponse))}
	}
	wait := time.Duration(r.Parameters.RetryAfter) * time.Second
	if wait == 0 {
		wait = retryAfterHeader(reply.Header, t.clock.Now())
	}
	return httpFailure(leadrelay.ChannelTelegram, status, r.Description, wait)
}

// telegramContentRefused says the Bot API refused the text itself (its
// markup, its length), which a plain-text message may fix.
func telegramContentRefused(e *DeliveryError) bool {
	d := strings.ToLower(e.Response)
	return e.Status == http.StatusBadRequest &&
		(strings.Contains(d, "can't parse entities") || strings.Contains(d, "message is too long"))
}

// telegramTextMax is the Bot API's bound on a message: 4,096 characters
// (UTF-16 code units) of the text as shown, after its markup is parsed.
const telegramTextMax = 4096

// telegramHTML formats a message in the Bot API's HTML subset. Every value is
// escaped: a lead named "<b>" must show as typed and cannot break the
// markup (Telegram rejects the message outright on a stray tag). Values are
// cut shorter until the shown text fits telegramTextMax.
func telegramHTML(m message) string {
	for _, valueMax := range []int{2 * maxValueRunes, 250, 120, 60, 20} {
		if text, shown := telegramRender(m, valueMax); shown <= telegramTextMax {
			return text
		}
	}
	text, _ := telegramRender(message{Headline: m.Headline, Link: m.Link}, 20)
	return text
}

// telegramRender is the HTML with each value cut to valueMax UTF-16 units,
// and the length of the text it shows.
func telegramRender(m message, valueMax int) (text string, shown int) {
	var b strings.Builder
	add := func(markup, value string) {
		b.WriteString(markup)
		shown += utf16Len(value)
	}
	headline := clipEscaped(m.Headline, 2*maxNameRunes, plain, utf16Len)
	add("<b>"+html.EscapeString(headline)+"</b>\n", headline+"\n")
	for _, f := range m.Fields {
		v := clipEscaped(f.Value, valueMax, plain, utf16Len)
		add("\n<b>"+html.EscapeString(f.Label)+":</b> "+html.EscapeString(v), "\n"+f.Label+": "+v)
	}
	if m.Link != "" {
		add("\n\n<a href=\""+html.EscapeString(m.Link)+"\">"+linkLabel+"</a>", "\n\n"+linkLabel)
	}
	return b.String(), shown
}

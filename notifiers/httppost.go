package notifiers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	notifyhttp "github.com/nikoksr/notify/service/http"
)

// DefaultSendTimeout is the one default bound of an attempt: the
// dispatcher's NOTIFY_SEND_TIMEOUT unless set, and the bound of a send whose
// context has no deadline, so a peer that never answers cannot hold a sender
// forever.
const DefaultSendTimeout = 15 * time.Second

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultSendTimeout)
}

// maxReplyBytes bounds how much of a peer's answer we read.
const maxReplyBytes = 64 << 10

// httpReply is a peer's answer to one POST.
type httpReply struct {
	Status int
	Header http.Header
	Body   []byte
}

// postOnce POSTs body to target through notify's http service and returns
// the peer's answer, whatever its status; err is set only when no answer came.
//
// notify's service honours the context and takes any URL, but reports a
// failed status only as text; its post-send hook sees the response, so that
// is where we keep the status, headers and body for classification. A
// Service is built per call because its Webhook header map is shared by
// every request it sends.
func postOnce(ctx context.Context, client *http.Client, target, contentType string, header http.Header, body []byte) (httpReply, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("User-Agent", "leadrelay")
	h.Set("Content-Type", contentType)

	svc := notifyhttp.New()
	svc.WithClient(client)
	svc.Serializer = rawBody{}
	var (
		reply   httpReply
		replied bool
	)
	svc.PostSend(func(_ *http.Request, resp *http.Response) error {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
		if err != nil {
			return fmt.Errorf("read reply: %w", err)
		}
		reply = httpReply{Status: resp.StatusCode, Header: resp.Header, Body: b}
		replied = true
		return nil
	})
	svc.AddReceivers(&notifyhttp.Webhook{
		URL:          target,
		Method:       http.MethodPost,
		ContentType:  contentType,
		Header:       h,
		BuildPayload: func(string, string) any { return body },
	})

	err := svc.Send(ctx, "", "")
	if replied {
		return reply, nil // notify's own error only restates a non-2xx status
	}
	if err == nil {
		return httpReply{}, fmt.Errorf("post: no reply recorded")
	}
	return httpReply{}, redactURL(err, target)
}

// rawBody hands notify the bytes we already encoded, so what is signed (the
// CRM webhook) is exactly what is sent.
type rawBody struct{}

func (rawBody) Marshal(_ string, payload any) ([]byte, error) {
	b, ok := payload.([]byte)
	if !ok {
		return nil, fmt.Errorf("payload is %T, want []byte", payload)
	}
	return b, nil
}

// redactURL rewrites err's text so it no longer contains target: a Slack
// webhook URL and a Telegram bot URL are credentials, and this text lands in
// logs and notification_logs. The original error stays reachable for
// errors.Is and errors.As.
func redactURL(err error, target string) error {
	msg := err.Error()
	u, perr := url.Parse(target)
	if perr != nil || u.Host == "" {
		return &redactedError{msg: strings.ReplaceAll(msg, target, "the configured URL"), err: err}
	}
	shown := u.Scheme + "://" + u.Host + "/…"
	// net/http quotes the URL as it re-serialised it, which may differ from
	// the configured text.
	msg = strings.ReplaceAll(msg, target, shown)
	msg = strings.ReplaceAll(msg, u.String(), shown)
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

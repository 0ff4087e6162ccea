package notifiers

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"strings"
	"time"
)

// Prober is a sender with a harmless call that shows whether its settings
// work without sending anything (`leadrelay doctor`). Probe says what it
// found; its error says what is wrong, never quoting a secret.
type Prober interface {
	Sender
	Probe(ctx context.Context) (string, error)
}

// probeBody reads at most 4 KiB of a probe's answer.
func probeBody(res *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	return strings.TrimSpace(string(b))
}

// Probe posts an empty message to the webhook. Slack has no call that
// checks a webhook without posting, but refuses an empty message before
// posting anything: 400 no_text means the webhook is live, 404 no_service,
// 403 invalid_token or 410 that it is not.
func (s *Slack) Probe(ctx context.Context) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the webhook's host: %w", redactURLError(err))
	}
	defer res.Body.Close()
	body := clip(probeBody(res), 200)
	switch {
	case res.StatusCode == http.StatusBadRequest && (body == "no_text" || body == "invalid_payload" || strings.HasPrefix(body, "missing_text")):
		return "the webhook is live (an empty message, refused as Slack refuses it; nothing was posted)", nil
	case res.StatusCode == http.StatusOK:
		return "", errors.New("the URL accepted an empty message: it is not a Slack incoming webhook")
	default:
		return "", fmt.Errorf("the webhook answered %d %s: it is not a live Slack incoming webhook", res.StatusCode, body)
	}
}

// Probe asks the Bot API who the bot is (getMe): a wrong token gets 401.
func (t *Telegram) Probe(ctx context.Context) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.url, "/sendMessage")+"/getMe", nil)
	if err != nil {
		return "", errors.New("the API base URL does not make a request")
	}
	res, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the Bot API: %w", redactURLError(err))
	}
	defer res.Body.Close()
	var answer struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
		Result      struct {
			Username string `json:"username"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(probeBody(res)), &answer); err != nil || !answer.OK {
		return "", fmt.Errorf("getMe answered %d %s: the bot token is not valid", res.StatusCode, clip(answer.Description, 200))
	}
	return fmt.Sprintf("getMe: the token is bot @%s's", answer.Result.Username), nil
}

// Probe fetches the account (GET /2010-04-01/Accounts/<SID>.json): wrong
// credentials get 401.
func (t *Twilio) Probe(ctx context.Context) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.url, "/Messages.json")+".json", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", t.auth)
	res, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("cannot reach the Twilio API: %w", redactURLError(err))
	}
	defer res.Body.Close()
	var account struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal([]byte(probeBody(res)), &account)
	switch {
	case res.StatusCode == http.StatusOK && account.Status == "active":
		return "the account is active", nil
	case res.StatusCode == http.StatusOK:
		return "", fmt.Errorf("the account's status is %q, not active", account.Status)
	default:
		return "", fmt.Errorf("fetching the account answered %d %s", res.StatusCode, clip(account.Message, 200))
	}
}

// Probe opens an SMTP session as a send would (connect, EHLO, STARTTLS
// where offered, AUTH when EMAIL_USER is set) and quits before MAIL FROM.
func (e *Email) Probe(ctx context.Context) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w", e.addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if e.implicitTLS {
		conn = tls.Client(conn, e.tls)
	}
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return "", fmt.Errorf("greeting from %s: %w", e.addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return "", fmt.Errorf("EHLO: %w", err)
	}
	secured := e.implicitTLS
	if ok, _ := c.Extension("STARTTLS"); ok && !e.implicitTLS {
		if err := c.StartTLS(e.tls); err != nil {
			return "", fmt.Errorf("STARTTLS: %w", err)
		}
		secured = true
	}
	did := "connected to " + e.addr
	if secured {
		did += " over TLS"
	}
	if e.user != "" {
		if err := e.auth(c); err != nil {
			return "", fmt.Errorf("AUTH as %s: %w", e.user, err)
		}
		did += ", authenticated as " + e.user
	}
	_ = c.Quit()
	return did + "; nothing sent", nil
}

// redactURLError drops the URL (a webhook URL or a bot token is a
// credential) from a client error, keeping what went wrong.
func redactURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

package notifiers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
)

// Email sends alerts over SMTP as multipart/alternative (plain text and
// HTML), upgrading with STARTTLS where the server offers it.
//
// notify's mail service (jordan-wright/email over smtp.SendMail) takes no
// context and sets no deadline, so a server that stops answering would hang
// the attempt; nor can it trust a given CA. This sender drives net/smtp on a
// connection whose deadline comes from the context.
type Email struct {
	mu   sync.Mutex
	idle []*smtpSession // open sessions, most recently used last

	addr        string // host:port
	host        string
	user, pass  string
	from        *mail.Address
	to          []*mail.Address
	implicitTLS bool
	tls         *tls.Config
	clock       clockwork.Clock // the Date of each message
}

func NewEmail(cfg EmailConfig) (*Email, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("email: %w", err)
	}
	e := &Email{
		addr:        net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		host:        cfg.Host,
		user:        cfg.User,
		pass:        cfg.Pass,
		implicitTLS: cfg.ImplicitTLS,
		tls:         &tls.Config{MinVersion: tls.VersionTLS12},
		clock:       clockOrReal(cfg.Clock),
	}
	if cfg.TLS != nil {
		e.tls = cfg.TLS.Clone()
	}
	if e.tls.ServerName == "" {
		e.tls.ServerName = cfg.Host
	}
	e.from, _ = mail.ParseAddress(cfg.From) // validate checked it
	for _, to := range cfg.To {
		addr, _ := mail.ParseAddress(to)
		e.to = append(e.to, addr)
	}
	return e, nil
}

func (e *Email) Channel() leadrelay.Channel { return leadrelay.ChannelEmail }

func (e *Email) Send(ctx context.Context, a Alert) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	msg, err := e.compose(render(a), a.EventID, e.clock.Now())
	if err != nil {
		return &DeliveryError{Channel: leadrelay.ChannelEmail, Permanent: true, Err: fmt.Errorf("compose: %w", err)}
	}
	return e.deliver(ctx, msg)
}

// SMTP sessions are kept open between alerts and reused (RFC 5321 allows
// many mail transactions per session): a burst of alerts pays the connection,
// TLS handshake and AUTH once. A session idle longer than smtpIdleTimeout, or
// that has carried smtpSessionMessages, is closed rather than reused, since
// servers drop idle clients and some cap messages per session.
const (
	smtpIdleSessions    = MaxConcurrency
	smtpIdleTimeout     = 30 * time.Second
	smtpSessionMessages = 100
)

// smtpSession is an open, greeted (and, when configured, authenticated)
// session.
type smtpSession struct {
	conn     net.Conn
	client   *smtp.Client
	messages int
	idle     time.Time
}

func (s *smtpSession) close() {
	_ = s.client.Close()
}

// deliver sends one message, on an idle session when there is one. A reused
// session that fails before the server took any of the message (the server
// closed it while idle) is replaced by a new one, once.
func (e *Email) deliver(ctx context.Context, msg []byte) error {
	for {
		s, reused, err := e.session(ctx)
		if err != nil {
			return err
		}
		step, err := e.transaction(ctx, s, msg)
		if err == nil {
			if s.client != nil {
				e.release(s)
			}
			return nil
		}
		s.close()
		if reused && step == "MAIL FROM" && ctx.Err() == nil && closedWhileIdle(err) {
			continue // a fresh session is not retried: reused is false
		}
		return e.failure(ctx, step, err)
	}
}

// closedWhileIdle tells a session the server ended while it was idle (the
// connection is gone, or the server says 421, closing) from a refusal.
func closedWhileIdle(err error) bool {
	var reply *textproto.Error
	return !errors.As(err, &reply) || reply.Code == 421
}

// session takes an idle session, or opens one.
func (e *Email) session(ctx context.Context) (*smtpSession, bool, error) {
	e.mu.Lock()
	for len(e.idle) > 0 {
		s := e.idle[len(e.idle)-1]
		e.idle = e.idle[:len(e.idle)-1]
		if time.Since(s.idle) < smtpIdleTimeout {
			e.mu.Unlock()
			return s, true, nil
		}
		s.close()
	}
	e.mu.Unlock()
	s, err := e.open(ctx)
	return s, false, err
}

// release keeps a session that carried a message for the next one.
func (e *Email) release(s *smtpSession) {
	s.messages++
	if s.messages >= smtpSessionMessages {
		_ = s.client.Quit()
		s.close()
		return
	}
	s.idle = time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.idle) >= smtpIdleSessions {
		s.close()
		return
	}
	e.idle = append(e.idle, s)
}

// bound makes ctx's end cut the session's pending and later reads and
// writes: net/smtp has no context, so the context's end sets a deadline in
// the past on the connection. The returned func lifts it, reporting whether
// the session is still usable.
func bound(ctx context.Context, conn net.Conn) func() bool {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return stop
}

// open dials the server and says hello: STARTTLS where offered, AUTH when
// configured.
func (e *Email) open(ctx context.Context) (*smtpSession, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return nil, e.failure(ctx, "connect", err)
	}
	unbound := bound(ctx, conn)
	fail := func(step string, err error) (*smtpSession, error) {
		unbound()
		_ = conn.Close()
		return nil, e.failure(ctx, step, err)
	}
	if e.implicitTLS {
		conn = tls.Client(conn, e.tls)
	}
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		return fail("greeting", err)
	}
	// Say hello explicitly: net/smtp's implicit hello, inside Extension,
	// would swallow a refusal.
	if err := c.Hello("localhost"); err != nil {
		return fail("EHLO", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !e.implicitTLS {
		if err := c.StartTLS(e.tls); err != nil {
			return fail("STARTTLS", err)
		}
	}
	if e.user != "" {
		if err := e.auth(c); err != nil {
			return fail("AUTH", err)
		}
	}
	if !unbound() {
		_ = c.Close()
		return nil, e.failure(ctx, "EHLO", ctx.Err())
	}
	return &smtpSession{conn: conn, client: c}, nil
}

// transaction sends msg on s, bounded by ctx; it returns the step that
// failed, if any. The session stays usable only when it returns no error.
func (e *Email) transaction(ctx context.Context, s *smtpSession, msg []byte) (string, error) {
	unbound := bound(ctx, s.conn)
	step, err := func() (string, error) {
		if err := s.client.Mail(e.from.Address); err != nil {
			return "MAIL FROM", err
		}
		for _, to := range e.to {
			if err := s.client.Rcpt(to.Address); err != nil {
				return "RCPT TO " + to.Address, err
			}
		}
		w, err := s.client.Data()
		if err != nil {
			return "DATA", err
		}
		if _, err := w.Write(msg); err != nil {
			return "DATA", err
		}
		if err := w.Close(); err != nil { // the server's verdict on the message
			return "end of DATA", err
		}
		return "", nil
	}()
	if !unbound() && err == nil {
		// The context ended as the server accepted: the message went out,
		// but the session's deadline is spent.
		s.close()
		s.client = nil
	}
	return step, err
}

// errNoSafeAuth is a configuration problem that retrying cannot fix.
var errNoSafeAuth = errors.New("refused")

func (e *Email) auth(c *smtp.Client) error {
	if ok, _ := c.Extension("AUTH"); !ok {
		return fmt.Errorf("%w: EMAIL_USER is set but the server offers no AUTH", errNoSafeAuth)
	}
	// net/smtp would refuse too, with an error we could not tell from a
	// network failure.
	if _, secure := c.TLSConnectionState(); !secure && !isLocalhost(e.host) {
		return fmt.Errorf("%w: the server offers no STARTTLS and EMAIL_PASS is never sent in clear", errNoSafeAuth)
	}
	return c.Auth(smtp.PlainAuth("", e.user, e.pass, e.host))
}

// isLocalhost matches net/smtp's PlainAuth, which allows a clear-text
// password only to these names.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// failure classifies a failed step: SMTP 4xx replies are transient, 5xx
// permanent; a context that ended is a transient timeout whatever the
// connection said about it.
func (e *Email) failure(ctx context.Context, step string, err error) *DeliveryError {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return &DeliveryError{Channel: leadrelay.ChannelEmail, Err: fmt.Errorf("%s: %w (%w)", step, ctxErr, err)}
	}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		return &DeliveryError{
			Channel:   leadrelay.ChannelEmail,
			Permanent: reply.Code >= 500,
			Status:    reply.Code,
			Response:  clip(reply.Msg, maxResponse),
			Err:       fmt.Errorf("%s: SMTP %d: %s", step, reply.Code, clip(reply.Msg, maxResponse)),
		}
	}
	if errors.Is(err, errNoSafeAuth) {
		return &DeliveryError{Channel: leadrelay.ChannelEmail, Permanent: true, Err: fmt.Errorf("%s: %w", step, err)}
	}
	return connFailure(leadrelay.ChannelEmail, fmt.Errorf("%s: %w", step, err))
}

// compose builds the whole message: headers, then a multipart/alternative
// body with the text first (the part clients fall back to) and HTML last.
func (e *Email) compose(m message, eventID string, now time.Time) ([]byte, error) {
	var body bytes.Buffer
	parts := multipart.NewWriter(&body)
	if err := writeQPPart(parts, "text/plain; charset=utf-8", m.plainText()); err != nil {
		return nil, err
	}
	if err := writeQPPart(parts, "text/html; charset=utf-8", emailHTML(m)); err != nil {
		return nil, err
	}
	if err := parts.Close(); err != nil {
		return nil, err
	}

	to := make([]string, len(e.to))
	for i, addr := range e.to {
		to[i] = addr.String()
	}
	var msg bytes.Buffer
	header := func(name, value string) { msg.WriteString(name + ": " + value + "\r\n") }
	header("From", e.from.String()) // String applies RFC 2047 to the name
	header("To", strings.Join(to, ", "))
	header("Subject", encodeHeaderText(clip(m.Headline, subjectMaxRunes), len("Subject: ")))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", messageID(eventID, e.from.Address))
	// RFC 3834: an alert, so no vacation auto-replies back to us.
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+parts.Boundary()+`"`)
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// subjectMaxRunes bounds the Subject as read: mail clients show far less.
const subjectMaxRunes = 150

// headerLineMax is the folded line length RFC 5322 asks for (it requires
// at most 998).
const headerLineMax = 78

// encodeHeaderText writes text someone typed as a header value, folded into
// lines of at most headerLineMax (the first line already holds used
// characters). Plain ASCII words stay as they are; anything else, and
// anything that looks like an encoded-word ("=?"), which a mail client
// would otherwise decode and show as something else, is written as RFC 2047
// encoded-words of its own. Text from oneLine holds no control characters.
func encodeHeaderText(text string, used int) string {
	var words []string
	pending := "" // a run of words to encode together, keeping their spaces
	flush := func() {
		if pending != "" {
			words = append(words, encodedWords(pending)...)
			pending = ""
		}
	}
	for _, w := range strings.Split(text, " ") {
		if w != "" && !strings.Contains(w, "=?") && !strings.Contains(w, "?=") && isPrintableASCII(w) && len(w) <= headerLineMax-1 {
			flush()
			words = append(words, w)
			continue
		}
		if pending != "" {
			pending += " "
		}
		pending += w
	}
	flush()
	var b strings.Builder
	line := used
	for i, w := range words {
		if i > 0 {
			if line+1+len(w) > headerLineMax {
				b.WriteString("\r\n")
				line = 0
			}
			b.WriteString(" ")
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

// encodedWords encodes s as base64 encoded-words of at most 75 characters
// each (RFC 2047), never splitting a character.
func encodedWords(s string) []string {
	const prefix, suffix = "=?utf-8?b?", "?="
	const maxBytes = (75 - len(prefix) - len(suffix)) / 4 * 3
	var words []string
	for s != "" {
		n := 0
		for _, r := range s {
			if n+utf8.RuneLen(r) > maxBytes {
				break
			}
			n += utf8.RuneLen(r)
		}
		words = append(words, prefix+base64.StdEncoding.EncodeToString([]byte(s[:n]))+suffix)
		s = s[n:]
	}
	return words
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func writeQPPart(parts *multipart.Writer, contentType, text string) error {
	w, err := parts.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {contentType},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return err
	}
	// Quoted-printable keeps lines short and non-ASCII names intact
	// through any relay.
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(text)); err != nil {
		return err
	}
	return qp.Close()
}

// messageID derives the Message-ID from the event, so a retry after a lost
// reply carries the same id and clients that deduplicate show one message.
func messageID(eventID, from string) string {
	domain := "leadrelay.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 {
		domain = from[at+1:]
	}
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, eventID)
	if id == "" {
		id = rand.Text()
	}
	return "<leadrelay." + id + "@" + domain + ">"
}

func emailHTML(m message) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n")
	b.WriteString("<h2>" + html.EscapeString(m.Headline) + "</h2>\n<table cellpadding=\"4\">\n")
	for _, f := range m.Fields {
		value := html.EscapeString(f.Value)
		if f.Tel != "" {
			value = "<a href=\"" + f.Tel + "\">" + value + "</a>"
		}
		b.WriteString("<tr><th align=\"left\">" + html.EscapeString(f.Label) + "</th><td>" + value + "</td></tr>\n")
	}
	b.WriteString("</table>\n")
	if m.Link != "" {
		b.WriteString("<p><a href=\"" + html.EscapeString(m.Link) + "\">" + linkLabel + "</a></p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

package notifiers

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// emailConfig sends to peer, trusting its certificate, as its user.
func emailConfig(peer *notifierstest.SMTP, to ...string) EmailConfig {
	return EmailConfig{
		Host: peer.Host,
		Port: peer.Port,
		User: peer.User,
		Pass: peer.Pass,
		From: "TrueNester Alerts <alerts@truenester.com>",
		To:   to,
		TLS:  peer.ClientTLS(),
	}
}

func newEmail(t *testing.T, cfg EmailConfig) *Email {
	t.Helper()
	e, err := NewEmail(cfg)
	if err != nil {
		t.Fatalf("NewEmail: %v", err)
	}
	return e
}

// silentServer accepts a connection and never says a word on it, holding it
// open until the test ends; onAccept, if set, runs once it is accepted. It
// returns the sender's configuration for it.
func silentServer(t *testing.T, onAccept func()) EmailConfig {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		defer close(accepted)
		c, err := l.Accept()
		if err != nil {
			return
		}
		accepted <- c
		if onAccept != nil {
			onAccept()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	})
	addr := l.Addr().(*net.TCPAddr)
	return EmailConfig{Host: addr.IP.String(), Port: addr.Port, From: "alerts@truenester.com", To: []string{"sales@truenester.com"}}
}

func TestEmailDeliversMultipartOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true, User: "alerts@truenester.com", Pass: "app-password"})
	to := []string{"sales@truenester.com", "Ops Team <ops@truenester.com>"}
	before := time.Now().Truncate(time.Second)
	if err := newEmail(t, emailConfig(peer, to...)).Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}

	got := peer.Messages()
	if len(got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(got))
	}
	d := got[0]
	if !d.TLS || d.AuthUser != "alerts@truenester.com" {
		t.Errorf("delivered with tls=%v auth=%q, want STARTTLS and AUTH", d.TLS, d.AuthUser)
	}
	if d.From != "alerts@truenester.com" || strings.Join(d.To, ",") != "sales@truenester.com,ops@truenester.com" {
		t.Errorf("envelope from %q to %q", d.From, d.To)
	}

	msg, err := mail.ReadMessage(bytes.NewReader(d.Data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, d.Data)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "New HOT lead: "+hostileName {
		t.Errorf("Subject = %q (raw %q, %v), want the headline", subject, msg.Header.Get("Subject"), err)
	}
	if raw := msg.Header.Get("Subject"); !isPrintableASCII(strings.ReplaceAll(raw, " ", "")) || !strings.Contains(raw, "=?utf-8?") {
		t.Errorf("Subject with a non-ASCII name is not RFC 2047 encoded: %q", raw)
	}
	if date, err := msg.Header.Date(); err != nil || date.Before(before) || date.After(time.Now()) {
		t.Errorf("Date = %q (%v), want the time of sending", msg.Header.Get("Date"), err)
	}
	if id := msg.Header.Get("Message-ID"); id != "<leadrelay.7f3c2a4e-1b2d-4c5e-9f60-0a1b2c3d4e5f@truenester.com>" {
		t.Errorf("Message-ID = %q, want one derived from the event id", id)
	}
	if from := msg.Header.Get("From"); from != `"TrueNester Alerts" <alerts@truenester.com>` {
		t.Errorf("From = %q", from)
	}
	if list, err := msg.Header.AddressList("To"); err != nil || len(list) != 2 || list[1].Name != "Ops Team" {
		t.Errorf("To = %q (%v)", msg.Header.Get("To"), err)
	}

	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	var bodies []string
	var types []string
	for {
		part, err := parts.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading MIME parts: %v", err)
		}
		b, err := io.ReadAll(part) // NextPart decodes quoted-printable
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, part.Header.Get("Content-Type"))
		bodies = append(bodies, strings.ReplaceAll(string(b), "\r\n", "\n"))
	}
	if strings.Join(types, ", ") != "text/plain; charset=utf-8, text/html; charset=utf-8" {
		t.Fatalf("parts = %q, want text/plain then text/html", types)
	}
	if want := render(testAlert()).plainText(); bodies[0] != want {
		t.Errorf("text part =\n%s\nwant\n%s", bodies[0], want)
	}
	htmlBody := bodies[1]
	for _, want := range []string{
		"<h2>New HOT lead: Zoë &lt;!channel&gt; &amp; &#34;Doe&#34; &lt;b&gt;x&lt;/b&gt;</h2>",
		"<tr><th align=\"left\">Property</th><td>Marina View &lt;2BR&gt; &amp; Pool (prop-42)</td></tr>",
		"<tr><th align=\"left\">Why</th><td>budget &gt; 2M AED; wants a viewing this week</td></tr>",
		`<a href="` + wantLink + `">Open in admin panel</a>`,
	} {
		if !strings.Contains(htmlBody, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, htmlBody)
		}
	}
	if strings.Contains(htmlBody, "<!channel>") || strings.Contains(htmlBody, "<2BR>") || strings.Contains(htmlBody, "<b>x") {
		t.Errorf("HTML part carries unescaped user text:\n%s", htmlBody)
	}
}

func TestEmailPlainServerWithoutTLSOrAuth(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{})
	if err := newEmail(t, emailConfig(peer, "sales@truenester.com")).Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := peer.Messages(); len(got) != 1 || got[0].TLS {
		t.Fatalf("deliveries = %+v, want one in clear", got)
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{ImplicitTLS: true, User: "alerts@truenester.com", Pass: "app-password"})
	cfg := emailConfig(peer, "sales@truenester.com")
	cfg.ImplicitTLS = true
	if err := newEmail(t, cfg).Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := peer.Messages(); len(got) != 1 || !got[0].TLS || got[0].AuthUser == "" {
		t.Fatalf("deliveries = %+v, want one over TLS, authenticated", got)
	}
}

func TestEmailClassifiesReplies(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true, User: "alerts@truenester.com", Pass: "app-password"})
	peer.RefuseRecipient("temp-fail@truenester.com", notifierstest.Answer{Status: 451, Body: "Requested action aborted: try again later"})
	peer.RefuseRecipient("no-such-user@truenester.com", notifierstest.Answer{Status: 550, Body: "Mailbox unavailable"})
	wrongPass := emailConfig(peer, "sales@truenester.com")
	wrongPass.Pass = "wrong"
	tests := []struct {
		name      string
		cfg       EmailConfig
		status    int
		permanent bool
	}{
		{"451 at RCPT", emailConfig(peer, "sales@truenester.com", "temp-fail@truenester.com"), 451, false},
		{"550 at RCPT", emailConfig(peer, "no-such-user@truenester.com"), 550, true},
		{"535 at AUTH", wrongPass, 535, true},
	}
	for _, tt := range tests {
		err := newEmail(t, tt.cfg).Send(t.Context(), testAlert())
		var de *DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v is not a *DeliveryError", tt.name, err)
			continue
		}
		if de.Channel != leadrelay.ChannelEmail || de.Status != tt.status || de.Permanent != tt.permanent || de.Response == "" {
			t.Errorf("%s: got %+v, want status %d permanent %v with the server's text", tt.name, de, tt.status, tt.permanent)
		}
	}
	if n := len(peer.Messages()); n != 0 {
		t.Errorf("server accepted %d messages, want none", n)
	}
}

func TestEmailUntrustedCertificateIsPermanent(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true})
	cfg := emailConfig(peer, "sales@truenester.com")
	cfg.TLS = nil // the system's roots do not know the test certificate
	err := newEmail(t, cfg).Send(t.Context(), testAlert())
	var certErr *tls.CertificateVerificationError
	if !errors.As(err, &certErr) || !IsPermanent(err) {
		t.Errorf("err = %v, want a permanent certificate error", err)
	}
	if n := len(peer.Messages()); n != 0 {
		t.Errorf("server accepted %d messages over an untrusted connection", n)
	}
}

// A server that accepts the connection and never greets: only the context
// deadline can end the attempt.
func TestEmailHangingServerIsCutOffByDeadline(t *testing.T) {
	t.Parallel()
	sendPastDeadline(t, newEmail(t, silentServer(t, nil)))
}

func TestEmailCancelledContextStopsTheConversation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	// The dispatcher shuts down while the server is silent.
	e := newEmail(t, silentServer(t, cancel))
	if err := e.Send(ctx, testAlert()); !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Errorf("err = %v, want a transient cancellation", err)
	}
}

// A server that refuses every message for a while: each attempt fails as
// transient, and the first after it recovers is delivered.
func TestEmailOutageIsTransientUntilTheServerRecovers(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true})
	peer.Down(notifierstest.Answer{Status: 421, Body: "Service not available, try again later"})
	e := newEmail(t, emailConfig(peer, "sales@truenester.com"))
	for range 2 {
		err := e.Send(t.Context(), testAlert())
		var de *DeliveryError
		if !errors.As(err, &de) || de.Status != 421 || de.Permanent {
			t.Errorf("during the outage: err = %v, want a transient 421", err)
		}
	}
	peer.Recover()
	if err := e.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	if got := peer.Messages(); len(got) != 1 || peer.Requests() != 3 {
		t.Errorf("server accepted %d messages from %d attempts, want 1 from 3", len(got), peer.Requests())
	}
}

// A password is configured but the server cannot take it: retrying will not
// change that, so the failure is permanent and nothing is sent.
func TestEmailUserWithoutServerAUTHIsPermanent(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true})
	cfg := emailConfig(peer, "sales@truenester.com")
	cfg.User, cfg.Pass = "alerts@truenester.com", "app-password"
	err := newEmail(t, cfg).Send(t.Context(), testAlert())
	if !IsPermanent(err) || !strings.Contains(err.Error(), "offers no AUTH") {
		t.Errorf("err = %v, want a permanent error saying the server offers no AUTH", err)
	}
	if n := len(peer.Messages()); n != 0 {
		t.Errorf("server accepted %d messages", n)
	}
}

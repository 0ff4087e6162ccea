package notifiers

import (
	"testing"

	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// Alerts in a row share one SMTP session (one handshake, one AUTH); a
// session the server dropped while it was idle is replaced without losing
// the alert; and one whose mail was refused is not reused.
func TestEmailReusesItsSession(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true, User: "alerts", Pass: "s3cret"})
	e := newEmail(t, emailConfig(peer, "sales@truenester.com"))
	for range 5 {
		if err := e.Send(t.Context(), testAlert()); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if got, n := len(peer.Messages()), peer.Sessions(); got != 5 || n != 1 {
		t.Fatalf("%d messages over %d sessions, want 5 over 1", got, n)
	}
	for _, m := range peer.Messages() {
		if !m.TLS || m.AuthUser != "alerts" {
			t.Fatalf("a message on the reused session went without TLS or AUTH: %+v", m)
		}
	}

	peer.DropSessions()
	if err := e.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send after the server dropped the idle session: %v", err)
	}
	if got, n := len(peer.Messages()), peer.Sessions(); got != 6 || n != 2 {
		t.Fatalf("%d messages over %d sessions, want 6 over 2", got, n)
	}

	peer.Refuse(notifierstest.Answer{Status: 451, Body: "try again later"})
	if err := e.Send(t.Context(), testAlert()); err == nil || IsPermanent(err) {
		t.Fatalf("Send = %v, want a transient refusal", err)
	}
	if err := e.Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send after a refusal: %v", err)
	}
	if got := len(peer.Messages()); got != 7 {
		t.Fatalf("%d messages, want 7", got)
	}
}

package notifiers

import (
	"bytes"
	"encoding/json"
	"maps"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// FuzzRenderers renders an alert of arbitrary content for every channel and
// judges each rendering as the provider would (the peers' own checks): the
// Block Kit message and its plain-text fallback pass Slack's limits, the HTML
// and plain texts pass Telegram's parser and its 4,096 characters, an SMS
// keeps to Twilio's 1,600, the email
// keeps RFC 5322's line lengths and a Subject that reads as the headline, and
// no channel shows a bidi or zero-width character. The seeds, the issue's
// cases among them, live in testdata/fuzz/FuzzRenderers and run with every
// `go test`; `go test -fuzz=FuzzRenderers ./notifiers/` explores further.
func FuzzRenderers(f *testing.F) {
	f.Add("Jane Doe", "jane@example.com", "+971 50 123 4567", "Marina View <2BR> & Pool", "hot", "budget > 2M AED", uint8(0))
	f.Add(hostileName, "<!channel>", "&amp;", strings.Repeat("&", 300), "warm", "<b>x</b>", uint8(1))
	email, err := NewEmail(EmailConfig{Host: "127.0.0.1", Port: 25, From: "Alerts <alerts@truenester.com>", To: []string{"sales@truenester.com"}})
	if err != nil {
		f.Fatal(err)
	}
	kinds := AlertEventTypes()
	f.Fuzz(func(t *testing.T, name, contact, phone, property, quality, reason string, kind uint8) {
		a := testAlert()
		a.EventType = kinds[int(kind)%len(kinds)]
		a.Name, a.Email, a.Phone, a.PropertyTitle, a.Quality = name, contact, phone, property, quality
		a.PropertyID, a.Source, a.Form = property, contact, name
		a.Reasons = []string{reason, name}
		m := render(a)

		for what, msg := range map[string]slackMessage{"blocks": slackPayload(m), "plain-text fallback": slackPlainPayload(m)} {
			body, err := json.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			if code := notifierstest.CheckSlackMessage(body); code != "" {
				t.Errorf("Slack refuses the %s: %s\n%s", what, code, body)
			}
			if strings.ContainsFunc(string(body), invisible) {
				t.Errorf("Slack's %s shows invisible characters", what)
			}
		}
		for mode, text := range map[string]string{"HTML": telegramHTML(m), "": clipEscaped(m.plainText(), telegramTextMax, plain, utf16Len)} {
			if refusal := notifierstest.CheckTelegramText(text, mode); refusal != "" {
				t.Errorf("Telegram refuses the %q text: %s\n%s", mode, refusal, text)
			}
			if strings.ContainsFunc(text, invisible) {
				t.Errorf("Telegram's %q text shows invisible characters", mode)
			}
		}

		if sms := clipEscaped(m.plainText(), twilioBodyMax, plain, utf16Len); utf16Len(sms) > 1600 || strings.ContainsFunc(sms, invisible) {
			t.Errorf("Twilio refuses an SMS of %d characters, or it shows invisible ones", utf16Len(sms))
		}

		data, err := email.compose(m, a.EventID, time.Unix(1_790_000_000, 0))
		if err != nil {
			t.Fatalf("compose: %v", err)
		}
		for _, line := range bytes.Split(data, []byte("\r\n")) {
			if len(line) > 998 {
				t.Fatalf("an email line of %d characters", len(line))
			}
		}
		msg, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("the email does not parse: %v", err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if want := clip(m.Headline, subjectMaxRunes); err != nil || subject != want {
			t.Errorf("Subject reads %q (%v), want %q", subject, err, want)
		}
		if !utf8.ValidString(subject) || strings.ContainsFunc(subject, invisible) {
			t.Errorf("Subject %q is not clean text", subject)
		}
		// No header forged from what the lead typed.
		names := slices.Sorted(maps.Keys(msg.Header))
		if want := []string{"Auto-Submitted", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}; !slices.Equal(names, want) {
			t.Errorf("the email's headers are %v, want %v", names, want)
		}
	})
}

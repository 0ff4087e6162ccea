package notifiers

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/mail"
	"strings"
	"testing"
	"unicode"

	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// Content a lead can type that once cost an alert (issue 11). Every channel
// must deliver each of these, within its own limits, to a peer that enforces
// those limits as the provider documents them.
func hostileAlerts() map[string]Alert {
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	alerts := map[string]Alert{}
	add := func(name string, edit func(*Alert)) {
		a := testAlert()
		edit(&a)
		alerts[name] = a
	}
	add("300 ampersands in the property title", func(a *Alert) { a.PropertyTitle = long("&", 300) })
	add("every field 500 angle brackets", func(a *Alert) {
		v := long("<", 600)
		a.Name, a.Email, a.Phone, a.Source, a.Form, a.PropertyTitle, a.PropertyID = v, v, v, v, v, v, v
		a.Reasons = []string{v, v}
	})
	add("every field 500 emoji", func(a *Alert) {
		v := long("🏠", 600)
		a.Name, a.Email, a.Phone, a.Source, a.Form, a.PropertyTitle, a.PropertyID = v, v, v, v, v, v, v
		a.Reasons = []string{v, v}
	})
	add("200-emoji name", func(a *Alert) { a.Name = long("😀", 200) })
	add("encoded-word name", func(a *Alert) { a.Name = "=?utf-8?q?Bcc:_x@evil.example?=" })
	add("bidi and zero-width", func(a *Alert) {
		a.Name = "Jane\u202e\u2066evil\u2069\u200b\u200d\ufeff Doe"
		a.PropertyTitle = "Villa\u200f\u061c 42\u2060"
	})
	add("newlines and controls", func(a *Alert) { a.Name = "Jane\r\nBcc: x@evil.example\x00\x1b[31m" })
	add("invalid UTF-8", func(a *Alert) { a.Name = "Jane \xff\xfe Doe" })
	return alerts
}

// invisible reports a character channels must not show.
func invisible(r rune) bool { return unicode.Is(unicode.Cf, r) }

func TestSlackDeliversHostileContentWithinItsLimits(t *testing.T) {
	t.Parallel()
	for name, a := range hostileAlerts() {
		peer := notifierstest.NewSlack(t)
		if err := slackSender(t, peer.URL).Send(t.Context(), a); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		msgs := peer.Messages()
		if len(msgs) != 1 || peer.Requests() != 1 {
			t.Errorf("%s: %d requests, %d accepted, want the Block Kit message accepted at once", name, peer.Requests(), len(msgs))
			continue
		}
		var got slackMessage
		if err := json.Unmarshal(msgs[0].Body, &got); err != nil {
			t.Fatal(err)
		}
		for _, b := range got.Blocks {
			for _, f := range b.Fields {
				if utf16Len(f.Text) > slackFieldMax {
					t.Errorf("%s: a field of %d characters", name, utf16Len(f.Text))
				}
			}
		}
		if strings.ContainsFunc(string(msgs[0].Body), invisible) || strings.Contains(string(msgs[0].Body), `\u202e`) {
			t.Errorf("%s: invisible characters reach Slack", name)
		}
	}
}

func TestTelegramDeliversHostileContentWithinItsLimits(t *testing.T) {
	t.Parallel()
	for name, a := range hostileAlerts() {
		peer := notifierstest.NewTelegram(t)
		if err := telegramSender(t, peer, peer.Token, peer.ChatID).Send(t.Context(), a); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if peer.Requests() != 1 {
			t.Errorf("%s: %d requests, want the HTML message accepted at once", name, peer.Requests())
		}
		var req telegramRequest
		if err := json.Unmarshal(peer.Messages()[0].Body, &req); err != nil {
			t.Fatal(err)
		}
		if req.ParseMode != "HTML" || !strings.HasPrefix(visibleText(req.Text), "New HOT lead: ") {
			t.Errorf("%s: sent %q in mode %q", name, req.Text, req.ParseMode)
		}
		if strings.ContainsFunc(req.Text, invisible) {
			t.Errorf("%s: invisible characters reach Telegram", name)
		}
	}
}

func TestEmailHeadersStayWithinRFC5322(t *testing.T) {
	t.Parallel()
	for name, a := range hostileAlerts() {
		peer := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{})
		if err := newEmail(t, emailConfig(peer, "sales@truenester.com")).Send(t.Context(), a); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		data := peer.Messages()[0].Data
		header, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
		inSubject := false
		for _, line := range strings.Split(string(header), "\r\n") {
			if !strings.HasPrefix(line, " ") {
				inSubject = strings.HasPrefix(line, "Subject:")
			}
			// RFC 5322 2.1.1: at most 998, and the Subject we fold at 78.
			if len(line) > 998 || inSubject && len(line) > 78 {
				t.Errorf("%s: a header line of %d characters: %.80q", name, len(line), line)
			}
		}
		msg, err := mail.ReadMessage(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		raw := msg.Header.Get("Subject")
		subject, err := new(mime.WordDecoder).DecodeHeader(raw)
		if err != nil {
			t.Errorf("%s: Subject %q does not decode: %v", name, raw, err)
		}
		want := clip(render(a).Headline, subjectMaxRunes)
		if subject != want {
			t.Errorf("%s: Subject reads %q, want %q", name, subject, want)
		}
		if strings.ContainsFunc(subject, invisible) || strings.ContainsAny(subject, "\r\n\x00") {
			t.Errorf("%s: Subject %q holds invisible or control characters", name, subject)
		}
		if len(msg.Header["Bcc"]) > 0 {
			t.Errorf("%s: a Bcc header was forged", name)
		}
	}
}

// A name written as encoded-words is shown as typed: the Subject carries
// it encoded, so no mail client decodes it into something else.
func TestEmailEncodesTextThatLooksLikeAnEncodedWord(t *testing.T) {
	t.Parallel()
	const name = "=?utf-8?q?Bcc:_x@evil.example?="
	got := encodeHeaderText("New lead: "+name, len("Subject: "))
	if strings.Contains(got, name) || strings.Contains(got, "q?Bcc") {
		t.Fatalf("the encoded-word passed through: %q", got)
	}
	decoded, err := new(mime.WordDecoder).DecodeHeader(got)
	if err != nil || decoded != "New lead: "+name {
		t.Errorf("decodes to %q (%v), want the name as typed", decoded, err)
	}
	// The case: a 200-emoji name once made a 2,956-character Subject.
	long := encodeHeaderText(clip("New COLD lead: "+strings.Repeat("😀", 200), subjectMaxRunes), len("Subject: "))
	for i, line := range strings.Split(long, "\r\n") {
		if i == 0 {
			line = "Subject: " + line
		}
		if len(line) > 78 {
			t.Errorf("a folded line of %d characters", len(line))
		}
	}
}

func TestChannelsShowNoBidiOrZeroWidthCharacters(t *testing.T) {
	t.Parallel()
	a := hostileAlerts()["bidi and zero-width"]
	m := render(a)
	if !strings.Contains(m.Headline, "Janeevil Doe") {
		t.Errorf("headline %q, want the name without its invisible characters", m.Headline)
	}
	for _, text := range []string{m.plainText(), telegramHTML(m), emailHTML(m)} {
		if strings.ContainsFunc(text, invisible) {
			t.Errorf("invisible characters remain in %q", text)
		}
	}
}

// Slack refusing the blocks (invalid_blocks) costs nothing: the alert goes
// out once more as plain text. A second refusal is permanent, and says both.
func TestSlackFallsBackToPlainTextOnInvalidBlocks(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSlack(t)
	peer.Refuse(notifierstest.Answer{Status: http.StatusBadRequest, Body: "invalid_blocks"})
	if err := slackSender(t, peer.URL).Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := peer.Messages()
	if peer.Requests() != 2 || len(msgs) != 1 {
		t.Fatalf("%d requests, %d accepted; want the refused blocks, then the text", peer.Requests(), len(msgs))
	}
	var got slackMessage
	if err := json.Unmarshal(msgs[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Blocks) != 0 || !strings.HasPrefix(got.Text, "New HOT lead: Zoë &lt;!channel&gt; &amp;") || !strings.Contains(got.Text, "|"+linkLabel+">") {
		t.Errorf("fallback = %+v, want escaped text only, with the link", got)
	}

	peer.Refuse(notifierstest.Answer{Status: http.StatusBadRequest, Body: "invalid_blocks"}, notifierstest.Answer{Status: http.StatusBadRequest, Body: "invalid_blocks"})
	err := slackSender(t, peer.URL).Send(t.Context(), testAlert())
	if !IsPermanent(err) || !strings.Contains(err.Error(), "plain-text fallback") {
		t.Errorf("both refused: %v, want a permanent error naming the fallback", err)
	}
	// A refusal of who we are, not of what we say, is not retried as text.
	before := peer.Requests()
	peer.Refuse(notifierstest.Answer{Status: http.StatusForbidden, Body: "invalid_token"})
	if err := slackSender(t, peer.URL).Send(t.Context(), testAlert()); !IsPermanent(err) || peer.Requests() != before+1 {
		t.Errorf("invalid_token: %v after %d requests, want permanent after 1", err, peer.Requests()-before)
	}
}

// Telegram refusing the markup ("can't parse entities") or the length costs
// nothing either: the alert goes out once more as plain text, no parse mode.
func TestTelegramFallsBackToPlainTextOnAContentRefusal(t *testing.T) {
	t.Parallel()
	for _, refusal := range []string{"Bad Request: can't parse entities: unsupported start tag at byte offset 12", "Bad Request: message is too long"} {
		peer := notifierstest.NewTelegram(t)
		peer.Refuse(notifierstest.Answer{Status: http.StatusBadRequest, Body: refusal})
		if err := telegramSender(t, peer, peer.Token, peer.ChatID).Send(t.Context(), testAlert()); err != nil {
			t.Fatalf("%s: Send: %v", refusal, err)
		}
		if peer.Requests() != 2 {
			t.Errorf("%s: %d requests, want 2", refusal, peer.Requests())
		}
		var req telegramRequest
		if err := json.Unmarshal(peer.Messages()[0].Body, &req); err != nil {
			t.Fatal(err)
		}
		if req.ParseMode != "" || req.Text != render(testAlert()).plainText() {
			t.Errorf("%s: fallback %q in mode %q, want the plain text", refusal, req.Text, req.ParseMode)
		}
	}
	peer := notifierstest.NewTelegram(t)
	peer.Down(notifierstest.Answer{Status: http.StatusBadRequest, Body: "Bad Request: can't parse entities: x"})
	err := telegramSender(t, peer, peer.Token, peer.ChatID).Send(t.Context(), testAlert())
	var de *DeliveryError
	if !errors.As(err, &de) || !de.Permanent || peer.Requests() != 2 || !strings.Contains(err.Error(), "plain-text fallback") {
		t.Errorf("both refused: %v after %d requests, want permanent after 2", err, peer.Requests())
	}
}

// The peers enforce the documented limits, or the tests above prove nothing.
func TestThePeersRefuseWhatTheProvidersRefuse(t *testing.T) {
	t.Parallel()
	slack := notifierstest.NewSlack(t)
	field := slackMessage{Text: "x", Blocks: []slackBlock{{Type: "section", Fields: []slackText{{Type: "mrkdwn", Text: strings.Repeat("&amp;", 401)}}}}}
	body, _ := json.Marshal(field)
	if reply, err := postOnce(t.Context(), http.DefaultClient, slack.URL, "application/json", nil, body); err != nil || reply.Status != 400 || string(reply.Body) != "invalid_blocks" {
		t.Errorf("Slack peer took a 2,005-character field: %d %s %v", reply.Status, reply.Body, err)
	}
	tg := notifierstest.NewTelegram(t)
	for mode, text := range map[string]string{"": strings.Repeat("😀", 2049), "HTML": "<b>" + strings.Repeat("&amp;", 4097) + "</b>"} {
		body, _ := json.Marshal(telegramRequest{ChatID: tg.ChatID, Text: text, ParseMode: mode})
		reply, err := postOnce(t.Context(), http.DefaultClient, tg.BaseURL+"/bot"+tg.Token+"/sendMessage", "application/json", nil, body)
		if err != nil || reply.Status != 400 || !strings.Contains(string(reply.Body), "message is too long") {
			t.Errorf("Telegram peer took %d characters in mode %q: %d %s %v", utf16Len(text), mode, reply.Status, reply.Body, err)
		}
	}
	// 4,096 shown characters pass, however long the markup.
	body, _ = json.Marshal(telegramRequest{ChatID: tg.ChatID, Text: "<b>" + strings.Repeat("&amp;", 4096) + "</b>", ParseMode: "HTML"})
	if reply, _ := postOnce(t.Context(), http.DefaultClient, tg.BaseURL+"/bot"+tg.Token+"/sendMessage", "application/json", nil, body); reply.Status != 200 {
		t.Errorf("Telegram peer refused 4,096 shown characters: %d %s", reply.Status, reply.Body)
	}
}

// SMS and WhatsApp: Twilio refuses a body over 1,600 characters (UTF-16),
// so 500-emoji fields once cost the alert.
func TestTwilioDeliversHostileContentWithinItsLimit(t *testing.T) {
	t.Parallel()
	for name, a := range hostileAlerts() {
		peer := newTwilioPeer(t)
		s, err := NewSMS(peer.config("+971501234567"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(t.Context(), a); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		peer.mu.Lock()
		body := peer.received[0].Get("Body")
		peer.mu.Unlock()
		if utf16Len(body) > twilioBodyMax || strings.ContainsFunc(body, invisible) {
			t.Errorf("%s: a body of %d characters, or with invisible ones", name, utf16Len(body))
		}
	}
}

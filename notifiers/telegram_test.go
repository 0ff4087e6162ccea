package notifiers

import (
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// visibleText is what a Telegram user sees of an HTML message.
func visibleText(s string) string {
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, ""))
}

func telegramSender(t *testing.T, peer *notifierstest.Telegram, token, chatID string) *Telegram {
	t.Helper()
	s, err := NewTelegram(TelegramConfig{BotToken: token, ChatID: chatID, APIBaseURL: peer.BaseURL})
	if err != nil {
		t.Fatalf("NewTelegram: %v", err)
	}
	return s
}

// leaksToken says whether err shows the peer's bot token, or its secret half.
func leaksToken(t *testing.T, peer *notifierstest.Telegram, err error) bool {
	t.Helper()
	if !strings.Contains(peer.Token, "s3cr3t") {
		t.Fatalf("peer token %q has no s3cr3t to look for", peer.Token)
	}
	return strings.Contains(err.Error(), "s3cr3t")
}

func TestTelegramDeliversEscapedHTML(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewTelegram(t)
	if err := telegramSender(t, peer, peer.Token, peer.ChatID).Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	received := peer.Messages()
	if len(received) != 1 {
		t.Fatalf("peer received %d messages, want 1", len(received))
	}
	var req telegramRequest
	if err := json.Unmarshal(received[0].Body, &req); err != nil {
		t.Fatal(err)
	}
	if !req.LinkPreviewOptions.IsDisabled {
		t.Errorf("link preview not disabled")
	}
	if !strings.HasPrefix(req.Text, "<b>New HOT lead: Zoë &lt;!channel&gt; &amp; &#34;Doe&#34; &lt;b&gt;x&lt;/b&gt;</b>\n") {
		t.Errorf("text does not open with the escaped headline in bold: %q", req.Text)
	}
	if !strings.HasSuffix(req.Text, `<a href="`+wantLink+`">Open in admin panel</a>`) {
		t.Errorf("text does not end with the admin link: %q", req.Text)
	}
	// What the team reads is exactly what the lead typed.
	if got, want := visibleText(req.Text), render(testAlert()).plainText(); got != strings.ReplaceAll(want, "Open in admin panel: "+wantLink, "Open in admin panel") {
		t.Errorf("visible text =\n%s\nwant\n%s", got, want)
	}
}

func TestTelegramClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewTelegram(t)
	tests := []struct {
		token, chatID string
		refuse        *notifierstest.Answer // the peer's answer to a valid request
		status        int
		response      string
		permanent     bool
		retryAfter    time.Duration
	}{
		{peer.Token, "-100400", nil, 400, "Bad Request: chat not found", true, 0},
		{peer.Token, peer.ChatID, &notifierstest.Answer{Status: 403, Body: "Forbidden: bot was blocked by the user"}, 403, "Forbidden: bot was blocked by the user", true, 0},
		{"999:wrong", peer.ChatID, nil, 401, "Unauthorized", true, 0},
		{peer.Token, peer.ChatID, &notifierstest.Answer{Status: 429, Body: "Too Many Requests: retry after 7", RetryAfter: 7}, 429, "Too Many Requests: retry after 7", false, 7 * time.Second},
		{peer.Token, peer.ChatID, &notifierstest.Answer{Status: 500, Body: "Internal Server Error"}, 500, "Internal Server Error", false, 0},
		{peer.Token, peer.ChatID, &notifierstest.Answer{Status: 502, Body: "<html><body>502 Bad Gateway</body></html>", Raw: true}, 502, "<html><body>502 Bad Gateway</body></html>", false, 0},
	}
	for _, tt := range tests {
		if tt.refuse != nil {
			peer.Refuse(*tt.refuse)
		}
		err := telegramSender(t, peer, tt.token, tt.chatID).Send(t.Context(), testAlert())
		var de *DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%d %s: error %v is not a *DeliveryError", tt.status, tt.response, err)
			continue
		}
		if de.Channel != leadrelay.ChannelTelegram || de.Status != tt.status || de.Response != tt.response ||
			IsPermanent(err) != tt.permanent || RetryAfter(err) != tt.retryAfter {
			t.Errorf("%d %s: got %+v (permanent %v, retry after %v), want status %d %q permanent %v retry after %v",
				tt.status, tt.response, de, IsPermanent(err), RetryAfter(err), tt.status, tt.response, tt.permanent, tt.retryAfter)
		}
		if leaksToken(t, peer, err) {
			t.Errorf("error leaks the bot token: %v", err)
		}
	}
	if n := len(peer.Messages()); n != 0 {
		t.Errorf("peer accepted %d messages, want none", n)
	}
}

// The peer's HTML check must itself refuse what Telegram refuses, or the
// escaping test above proves nothing. (Our sender never sends such text, so
// the requests are sent by hand.)
func TestTelegramPeerRefusesUnescapedHTML(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewTelegram(t)
	post := func(text string) httpReply {
		t.Helper()
		body, err := json.Marshal(telegramRequest{ChatID: peer.ChatID, Text: text, ParseMode: "HTML"})
		if err != nil {
			t.Fatal(err)
		}
		reply, err := postOnce(t.Context(), http.DefaultClient, peer.BaseURL+"/bot"+peer.Token+"/sendMessage", "application/json", nil, body)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	for _, text := range []string{"<b>Zoë <!channel></b>", "Marina View <2BR> & Pool", "<b>unclosed"} {
		if reply := post(text); reply.Status != http.StatusBadRequest || !strings.Contains(string(reply.Body), "can't parse entities") {
			t.Errorf("peer answered %q with %d %s, want 400 can't parse entities", text, reply.Status, reply.Body)
		}
	}
	if reply := post(telegramHTML(render(testAlert()))); reply.Status != http.StatusOK {
		t.Errorf("peer refused our own message: %d %s", reply.Status, reply.Body)
	}
}

func TestTelegramHangingPeerIsCutOffByDeadline(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewTelegram(t)
	peer.Refuse(notifierstest.Answer{Hang: true})
	err := sendPastDeadline(t, telegramSender(t, peer, peer.Token, peer.ChatID))
	if leaksToken(t, peer, err) {
		t.Errorf("error leaks the bot token: %v", err)
	}
}

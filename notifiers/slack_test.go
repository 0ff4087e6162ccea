package notifiers

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

func slackSender(t *testing.T, url string) *Slack {
	t.Helper()
	s, err := NewSlack(SlackConfig{WebhookURL: url})
	if err != nil {
		t.Fatalf("NewSlack: %v", err)
	}
	return s
}

func TestSlackDeliversEscapedBlockKit(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSlack(t)
	if err := slackSender(t, peer.URL).Send(t.Context(), testAlert()); err != nil {
		t.Fatalf("Send: %v", err)
	}

	received := peer.Messages()
	if len(received) != 1 {
		t.Fatalf("peer received %d messages, want 1", len(received))
	}
	var msg slackMessage
	if err := json.Unmarshal(received[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	escapedName := `Zoë &lt;!channel&gt; &amp; "Doe" &lt;b&gt;x&lt;/b&gt;`
	if !strings.HasPrefix(msg.Text, "New HOT lead: "+escapedName+"\n<"+wantLink+"|") {
		t.Errorf("fallback text = %q, want the escaped headline and the link", msg.Text)
	}
	if len(msg.Blocks) != 3 {
		t.Fatalf("blocks = %+v, want header, fields, link", msg.Blocks)
	}
	// plain_text is shown as typed, so the header carries the name unescaped.
	if h := msg.Blocks[0]; h.Type != "header" || h.Text.Type != "plain_text" || h.Text.Text != "New HOT lead: "+hostileName {
		t.Errorf("header block = %+v", h)
	}
	fields := msg.Blocks[1].Fields
	if len(fields) != len(wantFields) {
		t.Fatalf("section fields = %+v, want %d", fields, len(wantFields))
	}
	for i, f := range fields {
		want := "*" + wantFields[i].Label + "*\n" + slackEscape(wantFields[i].Value)
		if f.Type != "mrkdwn" || f.Text != want {
			t.Errorf("field %d = %+v, want mrkdwn %q", i, f, want)
		}
	}
	if f := fields[3].Text; f != "*Property*\nMarina View &lt;2BR&gt; &amp; Pool (prop-42)" {
		t.Errorf("property field = %q, not escaped", f)
	}
	if link := msg.Blocks[2].Text; link.Type != "mrkdwn" || link.Text != "<"+wantLink+"|Open in admin panel>" {
		t.Errorf("link block = %+v", link)
	}
	// Nothing a lead typed may reach mrkdwn with its < or > intact.
	for _, text := range append([]string{msg.Text}, fields[0].Text, fields[3].Text, fields[5].Text) {
		if strings.Contains(text, "<!channel>") || strings.Contains(text, "<2BR>") || strings.Contains(text, "> 2M") {
			t.Errorf("unescaped user text in mrkdwn: %q", text)
		}
	}
}

func TestSlackClassifiesEveryAnswer(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSlack(t)
	tests := []struct {
		url        string
		refuse     *notifierstest.Answer // the peer's answer to a valid request
		status     int
		response   string
		permanent  bool
		retryAfter time.Duration
	}{
		{peer.URL, &notifierstest.Answer{Status: 403, Body: "invalid_token"}, 403, "invalid_token", true, 0},
		{peer.URL + "-removed", nil, 404, "no_service", true, 0},
		{peer.URL, &notifierstest.Answer{Status: 410, Body: "channel_is_archived"}, 410, "channel_is_archived", true, 0},
		{peer.URL, &notifierstest.Answer{Status: 429, Body: "rate_limited", RetryAfter: 30}, 429, "rate_limited", false, 30 * time.Second},
		{peer.URL, &notifierstest.Answer{Status: 500, Body: "internal_error"}, 500, "internal_error", false, 0},
	}
	for _, tt := range tests {
		if tt.refuse != nil {
			peer.Refuse(*tt.refuse)
		}
		err := slackSender(t, tt.url).Send(t.Context(), testAlert())
		var de *DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%d %s: error %v is not a *DeliveryError", tt.status, tt.response, err)
			continue
		}
		if de.Channel != leadrelay.ChannelSlack || de.Status != tt.status || de.Response != tt.response ||
			IsPermanent(err) != tt.permanent || RetryAfter(err) != tt.retryAfter {
			t.Errorf("%d %s: got %+v (permanent %v, retry after %v), want status %d %q permanent %v retry after %v",
				tt.status, tt.response, de, IsPermanent(err), RetryAfter(err), tt.status, tt.response, tt.permanent, tt.retryAfter)
		}
		if !strings.Contains(err.Error(), tt.response) {
			t.Errorf("%d %s: error %q does not say what Slack said", tt.status, tt.response, err)
		}
	}
	if n := len(peer.Messages()); n != 0 {
		t.Errorf("peer accepted %d messages, want none", n)
	}
}

// Slack's 400 invalid_payload, earned the way Slack gives it: by a body that
// is not a message. (Our sender never sends one, so the request is sent by
// hand to prove the peer, then classified.)
func TestSlackInvalidPayloadIsPermanent(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSlack(t)
	reply, err := postOnce(t.Context(), http.DefaultClient, peer.URL, "application/json", nil, []byte("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	if reply.Status != http.StatusBadRequest || string(reply.Body) != "invalid_payload" {
		t.Fatalf("peer answered %d %q, want 400 invalid_payload", reply.Status, reply.Body)
	}
	err = httpFailure(leadrelay.ChannelSlack, reply.Status, string(reply.Body), 0)
	if !IsPermanent(err) {
		t.Errorf("400 invalid_payload classified transient: %v", err)
	}
}

func TestSlackHangingPeerIsCutOffByDeadline(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSlack(t)
	peer.Refuse(notifierstest.Answer{Hang: true})
	sendPastDeadline(t, slackSender(t, peer.URL))
}

func TestSlackConnectionErrorIsTransientAndHidesTheWebhookURL(t *testing.T) {
	t.Parallel()
	// A port that refuses connections: listen, then close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	err = slackSender(t, "http://"+addr+"/services/T0001/B0001/s3cr3tT0ken").Send(t.Context(), testAlert())
	if err == nil || IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if strings.Contains(err.Error(), "s3cr3tT0ken") {
		t.Errorf("error leaks the webhook URL: %v", err)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not say which host failed", err)
	}
}

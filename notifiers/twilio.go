package notifiers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
)

// Twilio sends alerts as SMS or WhatsApp messages through Twilio's Messages
// API, one message per recipient.
//
// notify's twilio service (kevinburke/twilio-go) sends without a context, so
// an attempt could outlive its deadline; this sender posts the same form
// through notify's http service (see postOnce) instead.
type Twilio struct {
	channel leadrelay.Channel
	url     string // <base>/2010-04-01/Accounts/<SID>/Messages.json
	auth    string // the Authorization header: Basic, account SID and token
	from    string
	to      []string
	client  *http.Client
	clock   clockwork.Clock
}

func NewSMS(cfg TwilioConfig) (*Twilio, error) { return newTwilio(leadrelay.ChannelSMS, cfg) }

// NewWhatsApp sends through Twilio's WhatsApp sender; numbers get the
// "whatsapp:" prefix Twilio expects.
func NewWhatsApp(cfg TwilioConfig) (*Twilio, error) { return newTwilio(leadrelay.ChannelWhatsApp, cfg) }

func newTwilio(ch leadrelay.Channel, cfg TwilioConfig) (*Twilio, error) {
	if err := cfg.validate(ch); err != nil {
		return nil, fmt.Errorf("%s: %w", ch, err)
	}
	t := &Twilio{
		channel: ch,
		url:     strings.TrimRight(cfg.APIBaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		auth:    "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.AccountSID+":"+cfg.AuthToken)),
		from:    twilioAddress(ch, cfg.From),
		client:  clientOrDefault(cfg.Client),
		clock:   clockOrReal(cfg.Clock),
	}
	for _, to := range cfg.To {
		t.to = append(t.to, twilioAddress(ch, to))
	}
	return t, nil
}

func twilioAddress(ch leadrelay.Channel, number string) string {
	if ch == leadrelay.ChannelWhatsApp && !strings.HasPrefix(number, "whatsapp:") {
		return "whatsapp:" + number
	}
	return number
}

func (t *Twilio) Channel() leadrelay.Channel { return t.channel }

// A message longer than this is split by Twilio into many billed segments
// (and refused past 1,600 characters, counted in UTF-16 code units: an
// emoji is two).
const twilioBodyMax = 1500

// twilioError is the body of a failed Messages API call.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
}

// Send stops at the first recipient that fails; a retry sends again to the
// recipients before it.
func (t *Twilio) Send(ctx context.Context, a Alert) error {
	text := clipEscaped(render(a).plainText(), twilioBodyMax, plain, utf16Len)
	header := http.Header{}
	header.Set("Authorization", t.auth)
	for _, to := range t.to {
		form := url.Values{"From": {t.from}, "To": {to}, "Body": {text}}
		reply, err := postOnce(ctx, t.client, t.url, "application/x-www-form-urlencoded", header, []byte(form.Encode()))
		if err != nil {
			return connFailure(t.channel, fmt.Errorf("messages to %s: %w", to, err))
		}
		if reply.Status >= 200 && reply.Status < 300 {
			continue
		}
		response := string(reply.Body)
		var te twilioError
		if json.Unmarshal(reply.Body, &te) == nil && te.Message != "" {
			response = fmt.Sprintf("%s (Twilio error %d)", te.Message, te.Code)
		}
		return httpFailure(t.channel, reply.Status, response, retryAfterHeader(reply.Header, t.clock.Now()))
	}
	return nil
}

package notifiers

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/webhook"
)

// ErrOff marks a channel left off because its settings are absent. The
// error's text says which; the caller logs it once at start-up.
var ErrOff = errors.New("off")

func off(ch leadrelay.Channel, reason string) error {
	return fmt.Errorf("%s: %w: %s", ch, ErrOff, reason)
}

// ConfigError is a setting that stops start-up. Variable is the environment
// variable to fix; a secret's value is never quoted in Problem.
type ConfigError struct {
	Variable string
	Problem  string
}

func (e *ConfigError) Error() string { return e.Variable + ": " + e.Problem }

func badVar(variable, format string, args ...any) error {
	return &ConfigError{Variable: variable, Problem: fmt.Sprintf(format, args...)}
}

func missing(variable, when string) error {
	return badVar(variable, "required when %s", when)
}

// FromEnv builds a sender for every channel whose settings are present, in
// the order of leadrelay.Channels(). offReasons says, for each channel left off, why
// (log each once). Every sender reads the time from clock (nil: the real
// one). err joins every invalid setting, each naming its
// variable, so one start-up shows them all. With no sender at all, only a
// developer's process prints alerts (NewConsole); a service tells what to
// set (SetAChannel).
func FromEnv(getenv func(string) string, clock clockwork.Clock) (senders []Sender, offReasons []string, err error) {
	var errs []error
	add := func(s Sender, err error) {
		switch {
		case errors.Is(err, ErrOff):
			offReasons = append(offReasons, err.Error())
		case err != nil:
			errs = append(errs, err)
		default:
			senders = append(senders, s)
		}
	}
	if cfg, err := SlackConfigFromEnv(getenv); err != nil {
		add(nil, err)
	} else {
		cfg.Clock = clock
		add(NewSlack(cfg))
	}
	if cfg, err := EmailConfigFromEnv(getenv); err != nil {
		add(nil, err)
	} else {
		cfg.Clock = clock
		add(NewEmail(cfg))
	}
	if cfg, err := TelegramConfigFromEnv(getenv); err != nil {
		add(nil, err)
	} else {
		cfg.Clock = clock
		add(NewTelegram(cfg))
	}
	if cfg, err := WhatsAppConfigFromEnv(getenv); err != nil {
		add(nil, err)
	} else {
		cfg.Clock = clock
		add(NewWhatsApp(cfg))
	}
	if cfg, err := SMSConfigFromEnv(getenv); err != nil {
		add(nil, err)
	} else {
		cfg.Clock = clock
		add(NewSMS(cfg))
	}
	if cfg, err := CRMConfigFromEnv(getenv); err != nil {
		add(nil, err)
	} else {
		cfg.Clock = clock
		add(NewCRM(cfg))
	}
	return senders, offReasons, errors.Join(errs...)
}

// SetAChannel says what to set to give a process its first channel (the
// usual ones; the others are behind FEATURE_*_ENABLED), for a service that
// has none.
const SetAChannel = "set SLACK_WEBHOOK_URL, or EMAIL_HOST with EMAIL_FROM and EMAIL_TO, or TELEGRAM_BOT_TOKEN with TELEGRAM_CHAT_ID (README: Configuration)"

// SlackConfig configures the Slack incoming-webhook sender.
type SlackConfig struct {
	WebhookURL string          // SLACK_WEBHOOK_URL
	Client     *http.Client    // nil: a client of its own (NewHTTPClient); the context bounds each send
	Clock      clockwork.Clock // the time the sender reads; nil: the real clock
}

func SlackConfigFromEnv(getenv func(string) string) (SlackConfig, error) {
	cfg := SlackConfig{WebhookURL: strings.TrimSpace(getenv("SLACK_WEBHOOK_URL"))}
	if cfg.WebhookURL == "" {
		return cfg, off(leadrelay.ChannelSlack, "SLACK_WEBHOOK_URL is not set")
	}
	return cfg, nil
}

func (c SlackConfig) validate() error {
	return checkURL("SLACK_WEBHOOK_URL", c.WebhookURL, true)
}

// TelegramConfig configures the Telegram Bot API sender.
type TelegramConfig struct {
	BotToken   string // TELEGRAM_BOT_TOKEN
	ChatID     string // TELEGRAM_CHAT_ID: a number (-100123456789) or @channelname
	APIBaseURL string // TELEGRAM_API_BASE_URL, default https://api.telegram.org
	Client     *http.Client
	Clock      clockwork.Clock
}

const defaultTelegramAPI = "https://api.telegram.org"

func TelegramConfigFromEnv(getenv func(string) string) (TelegramConfig, error) {
	cfg := TelegramConfig{
		BotToken:   strings.TrimSpace(getenv("TELEGRAM_BOT_TOKEN")),
		ChatID:     strings.TrimSpace(getenv("TELEGRAM_CHAT_ID")),
		APIBaseURL: strings.TrimSpace(getenv("TELEGRAM_API_BASE_URL")),
	}
	if cfg.BotToken == "" && cfg.ChatID == "" {
		return cfg, off(leadrelay.ChannelTelegram, "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID are not set")
	}
	if cfg.APIBaseURL == "" {
		cfg.APIBaseURL = defaultTelegramAPI
	}
	return cfg, nil
}

var (
	telegramToken  = regexp.MustCompile(`^[0-9]+:[A-Za-z0-9_-]+$`)
	telegramChatID = regexp.MustCompile(`^(-?[0-9]+|@[A-Za-z0-9_]{5,})$`)
)

func (c TelegramConfig) validate() error {
	var errs []error
	switch {
	case c.BotToken == "":
		errs = append(errs, missing("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID is set"))
	case !telegramToken.MatchString(c.BotToken):
		// The token goes into the URL path; never quote it.
		errs = append(errs, badVar("TELEGRAM_BOT_TOKEN", "not a bot token (digits, a colon, then letters, digits, - or _)"))
	}
	switch {
	case c.ChatID == "":
		errs = append(errs, missing("TELEGRAM_CHAT_ID", "TELEGRAM_BOT_TOKEN is set"))
	case !telegramChatID.MatchString(c.ChatID):
		errs = append(errs, badVar("TELEGRAM_CHAT_ID", "%q is not a chat id (a number such as -100123456789, or @channelname)", c.ChatID))
	}
	errs = append(errs, checkURL("TELEGRAM_API_BASE_URL", c.APIBaseURL, false))
	return errors.Join(errs...)
}

// EmailConfig configures the SMTP sender.
type EmailConfig struct {
	Host string   // EMAIL_HOST
	Port int      // EMAIL_PORT, default 587
	User string   // EMAIL_USER; when set, the sender authenticates (AUTH PLAIN)
	Pass string   // EMAIL_PASS
	From string   // EMAIL_FROM, e.g. "TrueNester <notifications@truenester.com>"
	To   []string // EMAIL_TO, comma-separated
	// ImplicitTLS speaks TLS from the first byte (SMTPS). EmailConfigFromEnv
	// sets it for port 465; otherwise STARTTLS is used where offered.
	ImplicitTLS bool
	// TLS verifies the server; nil means the system's roots. Tests set
	// RootCAs to trust their own certificate.
	TLS *tls.Config
	// Clock dates each message; nil: the real clock.
	Clock clockwork.Clock
}

const defaultSMTPPort = 587

func EmailConfigFromEnv(getenv func(string) string) (EmailConfig, error) {
	cfg := EmailConfig{
		Host: strings.TrimSpace(getenv("EMAIL_HOST")),
		Port: defaultSMTPPort,
		User: strings.TrimSpace(getenv("EMAIL_USER")),
		Pass: getenv("EMAIL_PASS"),
		From: strings.TrimSpace(getenv("EMAIL_FROM")),
		To:   splitList(getenv("EMAIL_TO")),
	}
	if cfg.Host == "" {
		return cfg, off(leadrelay.ChannelEmail, "EMAIL_HOST is not set")
	}
	if p := strings.TrimSpace(getenv("EMAIL_PORT")); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return cfg, badVar("EMAIL_PORT", "%q is not a port number", p)
		}
		cfg.Port = port
	}
	cfg.ImplicitTLS = cfg.Port == 465
	return cfg, nil
}

func (c EmailConfig) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Host); err == nil {
		errs = append(errs, badVar("EMAIL_HOST", "%q includes a port; put the port in EMAIL_PORT", c.Host))
	} else if c.Host == "" || strings.ContainsAny(c.Host, " /") {
		errs = append(errs, badVar("EMAIL_HOST", "%q is not a host name", c.Host))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, badVar("EMAIL_PORT", "%d is not a port number", c.Port))
	}
	if c.User != "" && c.Pass == "" {
		errs = append(errs, missing("EMAIL_PASS", "EMAIL_USER is set"))
	}
	if c.From == "" {
		errs = append(errs, missing("EMAIL_FROM", "EMAIL_HOST is set"))
	} else if _, err := mail.ParseAddress(c.From); err != nil {
		errs = append(errs, badVar("EMAIL_FROM", "%q is not an address: %v", c.From, err))
	}
	if len(c.To) == 0 {
		errs = append(errs, missing("EMAIL_TO", "EMAIL_HOST is set"))
	}
	for _, to := range c.To {
		if _, err := mail.ParseAddress(to); err != nil {
			errs = append(errs, badVar("EMAIL_TO", "%q is not an address: %v", to, err))
		}
	}
	return errors.Join(errs...)
}

// TwilioConfig configures an SMS or WhatsApp sender on Twilio's Messages API.
type TwilioConfig struct {
	AccountSID string   // TWILIO_ACCOUNT_SID
	AuthToken  string   // TWILIO_AUTH_TOKEN
	APIBaseURL string   // TWILIO_API_BASE_URL, default https://api.twilio.com
	From       string   // TWILIO_SMS_FROM or TWILIO_WHATSAPP_FROM: E.164, +15551234567
	To         []string // SMS_TO or WHATSAPP_TO: comma-separated E.164 numbers
	Client     *http.Client
	Clock      clockwork.Clock
}

const defaultTwilioAPI = "https://api.twilio.com"

// twilioVars names, per Twilio channel, its feature flag and the variables
// that differ between SMS and WhatsApp; the account is shared.
var twilioVars = map[leadrelay.Channel]struct{ flag, from, to string }{
	leadrelay.ChannelSMS:      {flag: "FEATURE_SMS_ENABLED", from: "TWILIO_SMS_FROM", to: "SMS_TO"},
	leadrelay.ChannelWhatsApp: {flag: "FEATURE_WHATSAPP_ENABLED", from: "TWILIO_WHATSAPP_FROM", to: "WHATSAPP_TO"},
}

func SMSConfigFromEnv(getenv func(string) string) (TwilioConfig, error) {
	return twilioConfigFromEnv(getenv, leadrelay.ChannelSMS)
}

func WhatsAppConfigFromEnv(getenv func(string) string) (TwilioConfig, error) {
	return twilioConfigFromEnv(getenv, leadrelay.ChannelWhatsApp)
}

func twilioConfigFromEnv(getenv func(string) string, ch leadrelay.Channel) (TwilioConfig, error) {
	vars := twilioVars[ch]
	if err := featureOn(getenv, ch, vars.flag); err != nil {
		return TwilioConfig{}, err
	}
	cfg := TwilioConfig{
		AccountSID: strings.TrimSpace(getenv("TWILIO_ACCOUNT_SID")),
		AuthToken:  strings.TrimSpace(getenv("TWILIO_AUTH_TOKEN")),
		APIBaseURL: strings.TrimSpace(getenv("TWILIO_API_BASE_URL")),
		From:       strings.TrimSpace(getenv(vars.from)),
		To:         splitList(getenv(vars.to)),
	}
	if cfg.APIBaseURL == "" {
		cfg.APIBaseURL = defaultTwilioAPI
	}
	return cfg, nil
}

var twilioSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)

func (c TwilioConfig) validate(ch leadrelay.Channel) error {
	vars := twilioVars[ch]
	when := vars.flag + " is true"
	var errs []error
	switch {
	case c.AccountSID == "":
		errs = append(errs, missing("TWILIO_ACCOUNT_SID", when))
	case !twilioSID.MatchString(c.AccountSID):
		errs = append(errs, badVar("TWILIO_ACCOUNT_SID", "%q is not an account SID (AC and 32 hex digits)", c.AccountSID))
	}
	if c.AuthToken == "" {
		errs = append(errs, missing("TWILIO_AUTH_TOKEN", when))
	}
	errs = append(errs, checkURL("TWILIO_API_BASE_URL", c.APIBaseURL, false))
	if c.From == "" {
		errs = append(errs, missing(vars.from, when))
	}
	if len(c.To) == 0 {
		errs = append(errs, missing(vars.to, when))
	}
	return errors.Join(errs...)
}

// CRMConfig configures the signed CRM webhook.
type CRMConfig struct {
	WebhookURL string // CRM_WEBHOOK_URL
	// Secret signs each request (CRM_WEBHOOK_SECRET): base64, optionally
	// after "whsec_", as the Standard Webhooks libraries read it.
	Secret string
	Client *http.Client
	Clock  clockwork.Clock // stamps webhook-timestamp; nil: the real clock
}

func CRMConfigFromEnv(getenv func(string) string) (CRMConfig, error) {
	if err := featureOn(getenv, leadrelay.ChannelCRM, "FEATURE_CRM_ENABLED"); err != nil {
		return CRMConfig{}, err
	}
	return CRMConfig{
		WebhookURL: strings.TrimSpace(getenv("CRM_WEBHOOK_URL")),
		Secret:     strings.TrimSpace(getenv("CRM_WEBHOOK_SECRET")),
	}, nil
}

func (c CRMConfig) validate() error {
	var errs []error
	if c.WebhookURL == "" {
		errs = append(errs, missing("CRM_WEBHOOK_URL", "FEATURE_CRM_ENABLED is true"))
	} else {
		errs = append(errs, checkURL("CRM_WEBHOOK_URL", c.WebhookURL, true))
	}
	if c.Secret == "" {
		errs = append(errs, missing("CRM_WEBHOOK_SECRET", "FEATURE_CRM_ENABLED is true"))
	} else if _, err := webhook.Key(c.Secret); err != nil {
		errs = append(errs, badVar("CRM_WEBHOOK_SECRET", "%v", err))
	}
	return errors.Join(errs...)
}

// featureOn reads a feature flag; a flag that is not true leaves its
// channel off.
func featureOn(getenv func(string) string, ch leadrelay.Channel, flag string) error {
	v := strings.TrimSpace(getenv(flag))
	if v == "" {
		return off(ch, flag+" is not set")
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return badVar(flag, "%q is not true or false", v)
	}
	if !on {
		return off(ch, flag+" is false")
	}
	return nil
}

// checkURL reports a value that is not an absolute http(s) URL. secret
// keeps the value out of the message: a webhook URL is a credential.
func checkURL(variable, value string, secret bool) error {
	u, err := url.Parse(value)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		return nil
	}
	if secret {
		return badVar(variable, "not an http(s) URL")
	}
	return badVar(variable, "%q is not an http(s) URL", value)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

package notifiers

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/truenester/leadrelay"
)

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// configVariables lists the variables named by every *ConfigError in err.
func configVariables(err error) []string {
	var vars []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *ConfigError:
			vars = append(vars, e.Variable)
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return vars
}

var fullEnv = map[string]string{
	"SLACK_WEBHOOK_URL":        "https://hooks.slack.com/services/T0001/B0001/s3cr3t",
	"EMAIL_HOST":               "smtp.gmail.com",
	"EMAIL_USER":               "notifications@truenester.com",
	"EMAIL_PASS":               "app-password",
	"EMAIL_FROM":               "TrueNester <notifications@truenester.com>",
	"EMAIL_TO":                 "sales@truenester.com, ops@truenester.com",
	"TELEGRAM_BOT_TOKEN":       "123456:ABC-def_ghi",
	"TELEGRAM_CHAT_ID":         "-100123456789",
	"FEATURE_WHATSAPP_ENABLED": "true",
	"FEATURE_SMS_ENABLED":      "1",
	"TWILIO_ACCOUNT_SID":       "AC0123456789abcdef0123456789abcdef",
	"TWILIO_AUTH_TOKEN":        "token",
	"TWILIO_SMS_FROM":          "+15005550006",
	"SMS_TO":                   "+971501234567",
	"TWILIO_WHATSAPP_FROM":     "+14155238886",
	"WHATSAPP_TO":              "+971501234567",
	"FEATURE_CRM_ENABLED":      "true",
	"CRM_WEBHOOK_URL":          "https://crm.example.com/hooks/leads",
	"CRM_WEBHOOK_SECRET":       "whsec_c2VjcmV0",
}

func TestFromEnvEverythingConfigured(t *testing.T) {
	t.Parallel()
	senders, off, err := FromEnv(env(fullEnv), nil)
	if err != nil || len(off) != 0 {
		t.Fatalf("FromEnv: off %q, err %v", off, err)
	}
	var got []leadrelay.Channel
	for _, s := range senders {
		got = append(got, s.Channel())
	}
	if !slices.Equal(got, leadrelay.Channels()) {
		t.Errorf("channels = %q, want %q", got, leadrelay.Channels())
	}
}

func TestFromEnvNothingConfiguredIsAllOff(t *testing.T) {
	t.Parallel()
	senders, off, err := FromEnv(env(nil), nil)
	if err != nil || len(senders) != 0 {
		t.Fatalf("senders %v, err %v, want none and no error", senders, err)
	}
	want := []string{
		"slack: off: SLACK_WEBHOOK_URL is not set",
		"email: off: EMAIL_HOST is not set",
		"telegram: off: TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID are not set",
		"whatsapp: off: FEATURE_WHATSAPP_ENABLED is not set",
		"sms: off: FEATURE_SMS_ENABLED is not set",
		"crm: off: FEATURE_CRM_ENABLED is not set",
	}
	if !slices.Equal(off, want) {
		t.Errorf("off =\n%q\nwant\n%q", off, want)
	}
}

// Each alternative SetAChannel names is enough, alone, to give a process its channel.
func TestSetAChannelNamesEnoughForEachChannel(t *testing.T) {
	t.Parallel()
	variable := regexp.MustCompile(`\b[A-Z]+(_[A-Z]+)+\b`)
	alternatives := strings.Split(SetAChannel, ", or ")
	want := []leadrelay.Channel{leadrelay.ChannelSlack, leadrelay.ChannelEmail, leadrelay.ChannelTelegram}
	if len(alternatives) != len(want) {
		t.Fatalf("SetAChannel names %d alternatives, want %d: %s", len(alternatives), len(want), SetAChannel)
	}
	for i, alt := range alternatives {
		vars := map[string]string{}
		for _, name := range variable.FindAllString(alt, -1) {
			vars[name] = fullEnv[name]
		}
		senders, _, err := FromEnv(env(vars), nil)
		if err != nil || len(senders) != 1 || senders[0].Channel() != want[i] {
			t.Errorf("with %v alone: %d senders, err %v; want %s", slices.Collect(maps.Keys(vars)), len(senders), err, want[i])
		}
	}
}

func TestFromEnvFeatureFlagFalseIsOff(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"FEATURE_CRM_ENABLED": "false", "CRM_WEBHOOK_URL": "https://crm.example.com"}
	senders, off, err := FromEnv(env(vars), nil)
	if err != nil || len(senders) != 0 || !slices.Contains(off, "crm: off: FEATURE_CRM_ENABLED is false") {
		t.Errorf("senders %v off %q err %v, want crm off", senders, off, err)
	}
}

func TestFromEnvNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  map[string]string
		want    []string
		notSaid string // a secret value the message must not quote
	}{
		{"port not a number", map[string]string{"EMAIL_PORT": "smtp"}, []string{"EMAIL_PORT"}, ""},
		{"port out of range", map[string]string{"EMAIL_PORT": "70000"}, []string{"EMAIL_PORT"}, ""},
		{"host with port", map[string]string{"EMAIL_HOST": "smtp.gmail.com:587"}, []string{"EMAIL_HOST"}, ""},
		{"bad sender", map[string]string{"EMAIL_FROM": "TrueNester"}, []string{"EMAIL_FROM"}, ""},
		{"no recipients", map[string]string{"EMAIL_TO": " , "}, []string{"EMAIL_TO"}, ""},
		{"bad recipient", map[string]string{"EMAIL_TO": "sales@truenester.com, not an address"}, []string{"EMAIL_TO"}, ""},
		{"user without password", map[string]string{"EMAIL_PASS": ""}, []string{"EMAIL_PASS"}, ""},
		{"slack URL does not parse", map[string]string{"SLACK_WEBHOOK_URL": "hooks.slack.com/services/s3cr3t"}, []string{"SLACK_WEBHOOK_URL"}, "s3cr3t"},
		{"telegram token without chat", map[string]string{"TELEGRAM_CHAT_ID": ""}, []string{"TELEGRAM_CHAT_ID"}, ""},
		{"telegram chat without token", map[string]string{"TELEGRAM_BOT_TOKEN": ""}, []string{"TELEGRAM_BOT_TOKEN"}, ""},
		{"telegram token malformed", map[string]string{"TELEGRAM_BOT_TOKEN": "123/s3cr3t"}, []string{"TELEGRAM_BOT_TOKEN"}, "s3cr3t"},
		{"telegram chat malformed", map[string]string{"TELEGRAM_CHAT_ID": "my group"}, []string{"TELEGRAM_CHAT_ID"}, ""},
		{"telegram base URL", map[string]string{"TELEGRAM_API_BASE_URL": "://nope"}, []string{"TELEGRAM_API_BASE_URL"}, ""},
		{"feature flag not a bool", map[string]string{"FEATURE_SMS_ENABLED": "yes please"}, []string{"FEATURE_SMS_ENABLED"}, ""},
		{"sms without numbers", map[string]string{"TWILIO_SMS_FROM": "", "SMS_TO": ""}, []string{"TWILIO_SMS_FROM", "SMS_TO"}, ""},
		{"twilio account shared by both", map[string]string{"TWILIO_ACCOUNT_SID": "nope"}, []string{"TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"}, ""},
		{"crm enabled without settings", map[string]string{"CRM_WEBHOOK_URL": "", "CRM_WEBHOOK_SECRET": ""}, []string{"CRM_WEBHOOK_URL", "CRM_WEBHOOK_SECRET"}, ""},
		{"crm secret not base64", map[string]string{"CRM_WEBHOOK_SECRET": "whsec_s3cr3t!"}, []string{"CRM_WEBHOOK_SECRET"}, "s3cr3t"},
		{"several at once", map[string]string{"EMAIL_PORT": "x", "SLACK_WEBHOOK_URL": "nope", "FEATURE_CRM_ENABLED": "maybe"}, []string{"SLACK_WEBHOOK_URL", "EMAIL_PORT", "FEATURE_CRM_ENABLED"}, ""},
	}
	for _, tt := range tests {
		vars := map[string]string{}
		for k, v := range fullEnv {
			vars[k] = v
		}
		for k, v := range tt.change {
			vars[k] = v
		}
		_, _, err := FromEnv(env(vars), nil)
		if got := configVariables(err); !slices.Equal(got, tt.want) {
			t.Errorf("%s: err %v names %q, want %q", tt.name, err, got, tt.want)
		}
		for _, v := range tt.want {
			if err != nil && !strings.Contains(err.Error(), v) {
				t.Errorf("%s: message %q does not name %s", tt.name, err, v)
			}
		}
		if tt.notSaid != "" && err != nil && strings.Contains(err.Error(), tt.notSaid) {
			t.Errorf("%s: message quotes a secret: %v", tt.name, err)
		}
	}
}

func TestEmailConfigFromEnvDefaultsAndImplicitTLS(t *testing.T) {
	t.Parallel()
	cfg, err := EmailConfigFromEnv(env(fullEnv))
	if err != nil || cfg.Port != 587 || cfg.ImplicitTLS || !slices.Equal(cfg.To, []string{"sales@truenester.com", "ops@truenester.com"}) {
		t.Errorf("cfg %+v err %v, want port 587, STARTTLS, two recipients", cfg, err)
	}
	vars := map[string]string{"EMAIL_HOST": "smtp.gmail.com", "EMAIL_PORT": "465"}
	if cfg, err := EmailConfigFromEnv(env(vars)); err != nil || cfg.Port != 465 || !cfg.ImplicitTLS {
		t.Errorf("port 465: cfg %+v err %v, want implicit TLS", cfg, err)
	}
}

func TestTelegramConfigFromEnvDefaultBaseURL(t *testing.T) {
	t.Parallel()
	cfg, err := TelegramConfigFromEnv(env(fullEnv))
	if err != nil || cfg.APIBaseURL != "https://api.telegram.org" {
		t.Errorf("cfg %+v err %v, want the public Bot API", cfg, err)
	}
}

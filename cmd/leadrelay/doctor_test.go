package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// doctorSetup is a migrated database and real Slack, Telegram and SMTP
// peers, with the environment that configures them correctly.
type doctorSetup struct {
	url      string
	slack    *notifierstest.Slack
	telegram *notifierstest.Telegram
	smtp     *notifierstest.SMTP
	vars     map[string]string
}

func newDoctorSetup(t *testing.T) *doctorSetup {
	t.Helper()
	s := &doctorSetup{
		url:      dbtest.NewURL(t),
		slack:    notifierstest.NewSlack(t),
		telegram: notifierstest.NewTelegram(t),
		smtp:     notifierstest.NewSMTP(t, notifierstest.SMTPOptions{User: "alerts@truenester.com", Pass: "right-password", InsecureAuth: true}),
	}
	s.vars = map[string]string{
		"DATABASE_URL":          s.url,
		"SLACK_WEBHOOK_URL":     s.slack.URL,
		"TELEGRAM_BOT_TOKEN":    s.telegram.Token,
		"TELEGRAM_CHAT_ID":      s.telegram.ChatID,
		"TELEGRAM_API_BASE_URL": s.telegram.BaseURL,
		"EMAIL_HOST":            s.smtp.Host,
		"EMAIL_PORT":            fmt.Sprint(s.smtp.Port),
		"EMAIL_USER":            "alerts@truenester.com",
		"EMAIL_PASS":            "right-password",
		"EMAIL_FROM":            "TrueNester <alerts@truenester.com>",
		"EMAIL_TO":              "sales@truenester.com",
	}
	return s
}

// storeWebhook puts the receiver's URL and the secret the database signs
// with where the doorbell reads them off Supabase.
func (s *doctorSetup) storeWebhook(t *testing.T, url, secret string) {
	t.Helper()
	conn := testkit.Connect(t, s.url)
	if _, err := conn.Exec(context.Background(), `insert into leadrelay_private.settings (key, value) values ('webhook_url', $1::text), ('webhook_secret', $2::text)`, url, secret); err != nil {
		t.Fatal(err)
	}
}

func secret(b byte) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

func runDoctor(t *testing.T, vars map[string]string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), []string{"leadrelay", "doctor"}, env(vars), &out, &out)
	return out.String(), err
}

// A wrong Slack URL, a wrong SMTP password and a webhook secret that
// differs from the stored one: each is named with its fix, and doctor
// exits 1. Nothing reaches a channel.
func TestDoctorNamesEachProblemWithItsFix(t *testing.T) {
	t.Parallel()
	s := newDoctorSetup(t)
	s.vars["SLACK_WEBHOOK_URL"] = strings.Replace(s.slack.URL, "/services/", "/services/WRONG", 1)
	s.vars["EMAIL_PASS"] = "wrong-password"
	s.vars["WEBHOOK_SECRET"] = secret('a')
	s.storeWebhook(t, "http://127.0.0.1:1/webhooks/lead-events", secret('b'))

	out, err := runDoctor(t, s.vars)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("doctor: %v (exit %d), want exit 1\n%s", err, exitCode(err), out)
	}
	for _, want := range []string{
		`(?m)^FAIL  slack: the webhook answered 404 no_service: .*\(fix: .*SLACK_WEBHOOK_URL\)$`,
		`(?m)^FAIL  email: AUTH as alerts@truenester.com: 535 .*\(fix: .*EMAIL_PASS.*\)$`,
		`(?m)^FAIL  webhook: the secret in settings differs from WEBHOOK_SECRET.*\(fix: .*\)$`,
		`(?m)^ok    telegram: getMe: the token is bot @leadrelay_test_bot's$`,
		`(?m)^ok    migrations: all \d+ applied$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("doctor's report lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "FAIL  "); n != 3 {
		t.Errorf("%d failures reported, want 3:\n%s", n, out)
	}
	if len(s.slack.Messages())+len(s.telegram.Messages())+len(s.smtp.Messages()) > 0 {
		t.Error("doctor sent an alert")
	}
}

// A good setup, the webhook receiver being a running service with the same
// secret: all green, exit 0, nothing sent.
func TestDoctorIsAllGreenOnAGoodSetup(t *testing.T) {
	t.Parallel()
	s := newDoctorSetup(t)
	s.vars["WEBHOOK_SECRET"] = secret('c')
	serveVars := map[string]string{"DATABASE_URL": s.url, "WEBHOOK_SECRET": secret('c')}
	base, _ := startServeEnv(t, serveVars)
	s.storeWebhook(t, base+"/webhooks/lead-events", secret('c'))

	out, err := runDoctor(t, s.vars)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	wantAll(t, "doctor's report", out,
		"ok    settings: every variable is valid",
		"ok    slack: the webhook is live",
		"ok    telegram: getMe",
		"ok    email: connected to "+fmt.Sprintf("%s:%d", s.smtp.Host, s.smtp.Port)+", authenticated as alerts@truenester.com; nothing sent",
		"ok    database: reachable",
		"ok    durability: a commit waits for the disk (fsync on, synchronous_commit on)",
		"ok    functions: ",
		"ok    realtime: supabase_realtime publishes public.conversations",
		"ok    row-level security: on for all",
		"ok    webhook: the secret in settings equals WEBHOOK_SECRET",
		"ok    webhook receiver: "+base+"/webhooks/lead-events accepted a probe signed by the database",
		"skip  postgrest: set SUPABASE_URL and SUPABASE_ANON_KEY",
		"all good",
	)
	if strings.Contains(out, "FAIL") {
		t.Errorf("a good setup failed a check:\n%s", out)
	}
	if len(s.slack.Messages())+len(s.telegram.Messages())+len(s.smtp.Messages()) > 0 {
		t.Error("doctor sent an alert")
	}
}

// A DATABASE_URL whose sessions acknowledge a commit before it is on disk is named: the
// intake's 201 would promise a lead a crash can take.
func TestDoctorFailsCommitsThatDoNotWaitForTheDisk(t *testing.T) {
	t.Parallel()
	s := newDoctorSetup(t)
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	s.vars["DATABASE_URL"] = u.String()
	out, err := runDoctor(t, s.vars)
	if err == nil {
		t.Fatalf("doctor passed a database that acknowledges before the disk:\n%s", out)
	}
	if !strings.Contains(out, "FAIL  durability: synchronous_commit is off") || !strings.Contains(out, "fix: drop synchronous_commit from DATABASE_URL") {
		t.Errorf("doctor's report does not name synchronous_commit with its fix:\n%s", out)
	}
}

// A database whose functions are older than the binary's (a deploy whose
// migrate did not run) is named, with `leadrelay migrate` as the fix.
func TestDoctorFindsStaleFunctions(t *testing.T) {
	t.Parallel()
	s := newDoctorSetup(t)
	conn := testkit.Connect(t, s.url)
	if _, err := conn.Exec(context.Background(), `create or replace function public.sla_tick(p_now timestamptz, p_limit integer default 500)
		returns table (warnings integer, breaches integer) language sql as $$ select 0, 0 $$`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `alter table public.sla_policies disable row level security`); err != nil {
		t.Fatal(err)
	}
	out, err := runDoctor(t, s.vars)
	if err == nil {
		t.Fatalf("doctor passed a database with a stale function:\n%s", out)
	}
	wantAll(t, "doctor's report", out,
		"FAIL  functions: older than supabase/functions-sql: public.sla_tick (fix: run `leadrelay migrate`",
		"FAIL  row-level security: off on public.sla_policies",
	)
}

// An environment with no channel is a failure for serve, which would leave every alert waiting
// in the outbox, with what to set as the fix; for an intake-only process
// (ENABLE_NOTIFICATION_WORKER=false) it is only a skip, and all is good.
func TestDoctorFailsAServiceWithoutChannels(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	out, err := runDoctor(t, map[string]string{"DATABASE_URL": url})
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("doctor with no channel: %v (exit %d), want exit 1\n%s", err, exitCode(err), out)
	}
	if !regexp.MustCompile(`(?m)^FAIL  channels: none is configured: serve would claim no alert and leave every one waiting in the outbox .*\(fix: set SLACK_WEBHOOK_URL, or EMAIL_HOST .*TELEGRAM_BOT_TOKEN.*\)$`).MatchString(out) {
		t.Errorf("doctor's report does not fail the missing channels with their fix:\n%s", out)
	}
	if n := strings.Count(out, "FAIL  "); n != 1 {
		t.Errorf("%d failures reported, want 1:\n%s", n, out)
	}

	out, err = runDoctor(t, map[string]string{"DATABASE_URL": url, "ENABLE_NOTIFICATION_WORKER": "false"})
	if err != nil {
		t.Fatalf("doctor for an intake-only process with no channel: %v\n%s", err, out)
	}
	if !strings.Contains(out, "skip  channels: none is configured; with ENABLE_NOTIFICATION_WORKER=false") || !strings.Contains(out, "all good") {
		t.Errorf("doctor's report for an intake-only process:\n%s", out)
	}
}

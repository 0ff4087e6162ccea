package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/dbtest"
	"github.com/truenester/leadrelay/dispatch"
	"github.com/truenester/leadrelay/notifiers"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
	"github.com/truenester/leadrelay/outbox"
	"github.com/truenester/leadrelay/testkit"
)

// clock is the dispatcher's time: the real time plus an offset the test moves.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func quiet() *slog.Logger                { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type bundle struct {
	url      string
	db       *pgxpool.Pool
	slack    *notifierstest.Slack
	telegram *notifierstest.Telegram
	clock    *clock
	senders  []notifiers.Sender
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{url: dbtest.NewURL(t), slack: notifierstest.NewSlack(t), telegram: notifierstest.NewTelegram(t), clock: &clock{}}
	b.db = b.pool(t)
	slack, err := notifiers.NewSlack(notifiers.SlackConfig{WebhookURL: b.slack.URL})
	if err != nil {
		t.Fatal(err)
	}
	telegram, err := notifiers.NewTelegram(notifiers.TelegramConfig{BotToken: b.telegram.Token, ChatID: "-100123", APIBaseURL: b.telegram.BaseURL})
	if err != nil {
		t.Fatal(err)
	}
	b.senders = []notifiers.Sender{slack, telegram}
	return b
}

// pool opens a pool of its own on the test's database, as a replica would.
func (b *bundle) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(ctxT(t), b.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (b *bundle) dispatcher(name string) *dispatch.Dispatcher {
	return b.dispatcherOn(b.db, name)
}

// dispatcherOn is a dispatcher on db: a replica of its own when db is.
func (b *bundle) dispatcherOn(db *pgxpool.Pool, name string) *dispatch.Dispatcher {
	return dispatch.New(outbox.New(db), b.senders, nil, dispatch.Config{
		Worker:      name,
		Lease:       time.Minute,
		SendTimeout: 5 * time.Second,
		FrontendURL: "https://truenester.example",
	}, b.clock.now, quiet())
}

// lead saves a contact-form lead and returns its id.
func (b *bundle) lead(t *testing.T, name string) string {
	t.Helper()
	var id string
	email := strings.ReplaceAll(strings.ToLower(name), " ", ".") + "@example.com"
	if err := b.db.QueryRow(ctxT(t), "insert into conversations (form, name, email) values ('contact_form', $1, $2) returning id", name, email).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

type logRow struct {
	Channel   string
	Status    string
	Attempts  int
	LastError *string
	Next      *time.Time
}

func (b *bundle) logs(t *testing.T, leadID string) map[string]logRow {
	t.Helper()
	rows, err := b.db.Query(ctxT(t), `select l.channel::text, l.status::text, l.attempts, l.last_error, l.next_attempt_at
		from notification_logs l where l.conversation_id = $1`, leadID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]logRow{}
	for rows.Next() {
		var r logRow
		if err := rows.Scan(&r.Channel, &r.Status, &r.Attempts, &r.LastError, &r.Next); err != nil {
			t.Fatal(err)
		}
		out[r.Channel] = r
	}
	return out
}

func (b *bundle) processed(t *testing.T, leadID string) bool {
	t.Helper()
	var p bool
	if err := b.db.QueryRow(ctxT(t), "select processed from lead_events where conversation_id = $1 and event_type = 'lead.created'", leadID).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *bundle) timeline(t *testing.T, leadID string) []string {
	t.Helper()
	rows, err := b.db.Query(ctxT(t), "select title from conversation_timeline where conversation_id = $1 and event_type in ('notification_sent', 'notification_failed') order by created_at, title", leadID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var titles []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		titles = append(titles, s)
	}
	return titles
}

func runOnce(t *testing.T, d *dispatch.Dispatcher) int {
	t.Helper()
	n, err := d.RunOnce(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDeliversToEveryChannelOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.dispatcher("a")
	id := b.lead(t, "Jane Doe")

	if n := runOnce(t, d); n != 1 {
		t.Fatalf("claimed %d events, want 1", n)
	}
	slack, telegram := b.slack.Messages(), b.telegram.Messages()
	if len(slack) != 1 || len(telegram) != 1 {
		t.Fatalf("slack got %d, telegram %d; want 1 each", len(slack), len(telegram))
	}
	if !strings.Contains(string(slack[0].Body), "Jane Doe") || !strings.Contains(string(slack[0].Body), "https://truenester.example/admin/conversations/"+id) {
		t.Errorf("slack message lacks the name or the admin link: %s", slack[0].Body)
	}
	logs := b.logs(t, id)
	for _, ch := range []string{"slack", "telegram"} {
		if l := logs[ch]; l.Status != "sent" || l.Attempts != 1 {
			t.Errorf("%s log = %+v, want sent after 1 attempt", ch, l)
		}
	}
	if len(logs) != 2 {
		t.Errorf("%d logs, want one per configured channel (2): %+v", len(logs), logs)
	}
	if !b.processed(t, id) {
		t.Error("event not processed")
	}
	if got := b.timeline(t, id); strings.Join(got, "|") != "Slack alert sent|Telegram alert sent" {
		t.Errorf("timeline = %q", got)
	}

	// Done is done: another round, or a doorbell for it, sends nothing.
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("second round claimed %d events", n)
	}
	if b.slack.Requests() != 1 || b.telegram.Requests() != 1 {
		t.Fatalf("a second round sent again: slack %d, telegram %d requests", b.slack.Requests(), b.telegram.Requests())
	}
}

func TestOutageRetriesOnlyThatChannelUntilItRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.dispatcher("a")
	id := b.lead(t, "Omar Haddad")
	b.slack.Down(notifierstest.Answer{Status: 503, Body: "service unavailable"})

	runOnce(t, d)
	logs := b.logs(t, id)
	if l := logs["slack"]; l.Status != "pending" || l.Attempts != 1 || l.Next == nil {
		t.Fatalf("slack after a 503 = %+v, want pending with a next attempt", l)
	}
	if wait := logs["slack"].Next.Sub(b.clock.now()); wait < 20*time.Second || wait > 40*time.Second {
		t.Errorf("first retry in %s, want 30s ± 20%%", wait)
	}
	if b.processed(t, id) {
		t.Fatal("event processed while Slack is pending")
	}
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("claimed %d events before the retry is due", n)
	}

	b.clock.advance(40 * time.Second)
	runOnce(t, d) // attempt 2: still down
	b.slack.Recover()
	b.clock.advance(3 * time.Minute)
	runOnce(t, d) // attempt 3: delivered

	logs = b.logs(t, id)
	if l := logs["slack"]; l.Status != "sent" || l.Attempts != 3 {
		t.Fatalf("slack = %+v, want sent on the 3rd attempt", l)
	}
	if len(b.slack.Messages()) != 1 || b.slack.Requests() != 3 {
		t.Errorf("slack: %d messages from %d requests, want 1 from 3", len(b.slack.Messages()), b.slack.Requests())
	}
	if b.telegram.Requests() != 1 {
		t.Errorf("telegram got %d requests; a Slack outage must not re-send it", b.telegram.Requests())
	}
	if !b.processed(t, id) {
		t.Error("event not processed after every channel ended")
	}
}

func TestPermanentErrorFailsAtOnceAndSaysWhy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.dispatcher("a")
	id := b.lead(t, "Priya Nair")
	b.slack.Refuse(notifierstest.Answer{Status: 403, Body: "invalid_token"})

	runOnce(t, d)
	l := b.logs(t, id)["slack"]
	if l.Status != "failed" || l.Attempts != 1 || l.LastError == nil || !strings.Contains(*l.LastError, "invalid_token") {
		t.Fatalf("slack = %+v, want failed after 1 attempt naming invalid_token", l)
	}
	if !b.processed(t, id) {
		t.Error("event not processed although every channel ended")
	}
	if got := b.timeline(t, id); !contains(got, "Slack failed after 1 attempt") {
		t.Errorf("timeline = %q", got)
	}
}

func TestRetriesAreBoundedAndTheTimelineSaysSo(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.dispatcher("a")
	id := b.lead(t, "Chen Wei")
	b.slack.Down(notifierstest.Answer{Status: 500, Body: "internal_error"})

	for range 6 {
		runOnce(t, d)
		b.clock.advance(15 * time.Minute)
	}
	l := b.logs(t, id)["slack"]
	if l.Status != "failed" || l.Attempts != 4 {
		t.Fatalf("slack = %+v, want failed after 4 attempts (1 + 3 retries)", l)
	}
	if b.slack.Requests() != 4 {
		t.Errorf("slack got %d requests, want 4", b.slack.Requests())
	}
	if got := b.timeline(t, id); !contains(got, "Slack failed after 4 attempts") {
		t.Errorf("timeline = %q", got)
	}

	// The admin replays it once Slack is back.
	b.slack.Recover()
	var eventID string
	if err := b.db.QueryRow(ctxT(t), "select id from lead_events where conversation_id = $1", id).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	n, err := outbox.New(b.db).Replay(ctxT(t), eventID, b.clock.now())
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v; want 1 channel", n, err)
	}
	runOnce(t, d)
	if l := b.logs(t, id)["slack"]; l.Status != "sent" {
		t.Fatalf("after replay slack = %+v", l)
	}
	if b.telegram.Requests() != 1 {
		t.Errorf("replay re-sent telegram (%d requests)", b.telegram.Requests())
	}
}

func TestTooManyRequestsWaitIsHonoured(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.dispatcher("a")
	id := b.lead(t, "Sara Lopez")
	b.telegram.Refuse(notifierstest.Answer{Status: 429, Body: "Too Many Requests: retry after 600", RetryAfter: 600})

	runOnce(t, d)
	l := b.logs(t, id)["telegram"]
	if l.Status != "pending" || l.Next == nil {
		t.Fatalf("telegram = %+v, want pending", l)
	}
	if wait := l.Next.Sub(b.clock.now()); wait < 590*time.Second {
		t.Fatalf("retry in %s, want the 600s Telegram asked for", wait)
	}
}

func TestAReplicaThatDiesLeavesItsEventsToTheOthersWhenItsLeaseRunsOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.lead(t, "Ahmed Ali")
	// Replica "dead" claims the event and never finishes it.
	claimed, err := outbox.New(b.db).Claim(ctxT(t), "dead", time.Minute, 10, b.clock.now())
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %d events, %v", len(claimed), err)
	}
	alive := b.dispatcher("alive")
	if n := runOnce(t, alive); n != 0 {
		t.Fatalf("took an event still under another replica's lease (%d)", n)
	}
	b.clock.advance(61 * time.Second)
	if n := runOnce(t, alive); n != 1 {
		t.Fatalf("claimed %d events after the lease ran out, want 1", n)
	}
	if !b.processed(t, id) || len(b.slack.Messages()) != 1 {
		t.Fatal("the event was not delivered by the surviving replica")
	}
}

func TestThreeReplicasDeliverEachOfAThousandAlertsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const leads = 1000
	if _, err := b.db.Exec(ctxT(t), `insert into conversations (form, name, email)
		select 'contact_form', 'Lead ' || g, 'lead' || g || '@example.com' from generate_series(1, $1) g`, leads); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 3 {
		d := b.dispatcherOn(b.pool(t), fmt.Sprintf("replica-%d", i))
		wg.Go(func() { d.Run(ctx) })
	}
	slack := b.slack.WaitFor(t, leads, time.Minute)
	b.telegram.WaitFor(t, leads, time.Minute)
	testkit.WaitForQuery(t, b.db, time.Minute, "every event to be processed",
		"select not exists (select from lead_events where not processed)")
	cancel()
	wg.Wait()

	seen := map[string]int{}
	for _, m := range slack {
		var msg struct{ Text string }
		json.Unmarshal(m.Body, &msg)
		seen[msg.Text]++
	}
	if len(slack) != leads || len(seen) != leads {
		t.Fatalf("slack got %d messages about %d distinct leads, want %d each", len(slack), len(seen), leads)
	}
	if n := len(b.telegram.Messages()); n != leads {
		t.Fatalf("telegram got %d messages, want %d", n, leads)
	}
	var sent int
	if err := b.db.QueryRow(ctxT(t), "select count(*) filter (where status = 'sent' and attempts = 1) from notification_logs").Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if sent != 2*leads {
		t.Errorf("%d deliveries sent on the first attempt, want %d", sent, 2*leads)
	}
}

func TestConsoleWhenNoChannelIsConfigured(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	var out testkit.Buffer
	d := dispatch.New(outbox.New(db), nil, notifiers.NewConsole(&out), dispatch.Config{Worker: "dev"}, time.Now, quiet())
	b := &bundle{db: db}
	id := b.lead(t, "Dev Lead")
	if n := runOnce(t, d); n != 1 {
		t.Fatalf("claimed %d", n)
	}
	if !strings.Contains(out.String(), "Dev Lead") {
		t.Fatalf("console printed %q", out.String())
	}
	if !b.processed(t, id) {
		t.Error("event not processed")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Routing follows notification_routes: sla.breached goes to Slack, Telegram
// and email; sla.warning to Slack and Telegram; lead.status_changed nowhere.
func TestEventsGoToTheirRoutedChannels(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mail := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true})
	email, err := notifiers.NewEmail(notifiers.EmailConfig{
		Host: mail.Host, Port: mail.Port, From: "TrueNester <alerts@truenester.example>",
		To: []string{"sales@truenester.example"}, TLS: mail.ClientTLS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	b.senders = append(b.senders, email)
	id := b.lead(t, "Routing Lead")
	d := b.dispatcher("a")
	runOnce(t, d) // lead.created: all three
	for _, typ := range []string{"sla.warning", "sla.breached", "lead.status_changed"} {
		if _, err := b.db.Exec(ctxT(t), "insert into lead_events (event_type, conversation_id, idempotency_key) values ($1::lead_event_type, $2::uuid, $1::text || ':' || $2::text)", typ, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := runOnce(t, d); n != 3 {
		t.Fatalf("claimed %d events, want 3", n)
	}
	rows, err := b.db.Query(ctxT(t), `select e.event_type::text, coalesce(string_agg(l.channel::text, ',' order by l.channel::text), ''), bool_and(e.processed)
		from lead_events e left join notification_logs l on l.lead_event_id = e.id and l.status = 'sent'
		where e.conversation_id = $1 group by e.event_type`, id)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var typ, channels string
		var processed bool
		if err := rows.Scan(&typ, &channels, &processed); err != nil {
			t.Fatal(err)
		}
		if !processed {
			t.Errorf("%s not processed", typ)
		}
		got[typ] = channels
	}
	want := map[string]string{
		"lead.created":        "email,slack,telegram",
		"sla.warning":         "slack,telegram",
		"sla.breached":        "email,slack,telegram",
		"lead.status_changed": "",
	}
	for typ, channels := range want {
		if got[typ] != channels {
			t.Errorf("%s went to %q, want %q", typ, got[typ], channels)
		}
	}
	if n := len(mail.Messages()); n != 2 {
		t.Errorf("the SMTP server got %d messages, want 2 (lead.created, sla.breached)", n)
	}
}

package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/database/outbox"
	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/dispatch"
	"github.com/truenester/leadrelay/notifiers"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
	"github.com/truenester/leadrelay/ops/health"
)

// clock is the dispatcher's time: the real time plus an offset the test moves.
// clock is the real clock moved forward by the test.
type clock struct {
	clockwork.Clock
	offset atomic.Int64
}

func (c *clock) Now() time.Time          { return c.Clock.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }
func quiet() *slog.Logger                { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type bundle struct {
	t        *testing.T
	url      string
	db       *pgxpool.Pool
	slack    *notifierstest.Slack
	telegram *notifierstest.Telegram
	clock    *clock
	senders  []notifiers.Sender
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{t: t, url: dbtest.NewURL(t), slack: notifierstest.NewSlack(t), telegram: notifierstest.NewTelegram(t), clock: &clock{Clock: clockwork.NewRealClock()}}
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

// leads saves n leads (Lead 1 to Lead n) in one statement, each with its
// lead.created event.
func (b *bundle) leads(t *testing.T, n int) {
	t.Helper()
	if _, err := b.db.Exec(testkit.Context(t), `insert into conversations (form, name, email)
		select 'contact_form', 'Lead ' || g, 'lead' || g || '@example.com' from generate_series(1, $1) g`, n); err != nil {
		t.Fatal(err)
	}
}

// withEmail adds an email sender whose mail goes to a test SMTP server,
// and returns the server.
func (b *bundle) withEmail(t *testing.T) *notifierstest.SMTP {
	t.Helper()
	mail := notifierstest.NewSMTP(t, notifierstest.SMTPOptions{STARTTLS: true})
	email, err := notifiers.NewEmail(notifiers.EmailConfig{
		Host: mail.Host, Port: mail.Port, From: "TrueNester <alerts@truenester.example>",
		To: []string{"sales@truenester.example"}, TLS: mail.ClientTLS(),
	})
	if err != nil {
		t.Fatal(err)
	}
	b.senders = append(b.senders, email)
	return mail
}

// event records an outbox event of type typ for lead, with the key the
// database's own events use.
func (b *bundle) event(t *testing.T, typ, lead string) {
	t.Helper()
	if _, err := b.db.Exec(testkit.Context(t), "insert into lead_events (event_type, conversation_id, idempotency_key) values ($1::lead_event_type, $2::uuid, $1::text || ':' || $2::text)", typ, lead); err != nil {
		t.Fatal(err)
	}
}

// pool opens a pool of its own on the test's database, as a replica would.
func (b *bundle) pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(testkit.Context(t), b.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (b *bundle) dispatcher(name string) *dispatch.Dispatcher {
	return b.dispatcherOn(b.db, name)
}

// sendTimeout bounds the tests' sends by the wall clock: half their lease (a minute), as
// the default 15s is half the default lease. No test here is about it; some hold a send
// while they move the dispatcher's clock and query, and a thousand leads go out through
// three replicas at once. At 5s a loaded machine could cut a send short, and the attempt
// would count as failed.
const sendTimeout = 30 * time.Second

// dispatcherOn is a dispatcher on db: a replica of its own when db is.
func (b *bundle) dispatcherOn(db *pgxpool.Pool, name string, tune ...func(*dispatch.Config)) *dispatch.Dispatcher {
	b.t.Helper()
	cfg := dispatch.Config{
		Replica:     name,
		Lease:       time.Minute,
		SendTimeout: sendTimeout,
		FrontendURL: "https://truenester.example",
	}
	for _, f := range tune {
		f(&cfg)
	}
	return b.newDispatcher(db, b.senders, cfg, b.clock, quiet())
}

// newDispatcher is dispatch.New on db for the test, which it fails on an error.
func (b *bundle) newDispatcher(db *pgxpool.Pool, senders []notifiers.Sender, cfg dispatch.Config, clock clockwork.Clock, log *slog.Logger) *dispatch.Dispatcher {
	b.t.Helper()
	d, err := dispatch.New(outbox.New(db), senders, nil, cfg, clock, log)
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

// holdSlack makes the Slack peer hold every send until the returned release is
// called, or the test ends.
func (b *bundle) holdSlack() (release func()) {
	hold := make(chan struct{})
	release = sync.OnceFunc(func() { close(hold) })
	b.t.Cleanup(release)
	b.slack.Refuse(notifierstest.Answer{Hold: hold})
	return release
}

// lead saves a contact-form lead and returns its id.
func (b *bundle) lead(t *testing.T, name string) string {
	t.Helper()
	var id string
	email := strings.ReplaceAll(strings.ToLower(name), " ", ".") + "@example.com"
	if err := b.db.QueryRow(testkit.Context(t), "insert into conversations (form, name, email) values ('contact_form', $1, $2) returning id", name, email).Scan(&id); err != nil {
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
	rows, err := b.db.Query(testkit.Context(t), `select l.channel::text, l.status::text, l.attempts, l.last_error, l.next_attempt_at
		from notification_logs l where l.conversation_id = $1`, leadID)
	if err != nil {
		t.Fatal(err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[logRow])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]logRow{}
	for _, r := range list {
		out[r.Channel] = r
	}
	return out
}

func (b *bundle) processed(t *testing.T, leadID string) bool {
	t.Helper()
	var p bool
	if err := b.db.QueryRow(testkit.Context(t), "select processed from lead_events where conversation_id = $1 and event_type = 'lead.created'", leadID).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *bundle) timeline(t *testing.T, leadID string) []string {
	t.Helper()
	rows, err := b.db.Query(testkit.Context(t), "select title from conversation_timeline where conversation_id = $1 and event_type in ('notification_sent', 'notification_failed') order by created_at, title", leadID)
	if err != nil {
		t.Fatal(err)
	}
	titles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return titles
}

func runOnce(t *testing.T, d *dispatch.Dispatcher) int {
	t.Helper()
	n, err := d.RunOnce(testkit.Context(t))
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

	if n := runOnce(t, d); n != 2 {
		t.Fatalf("claimed %d deliveries, want 2 (Slack, Telegram)", n)
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
	if got := b.timeline(t, id); strings.Join(sorted(got), "|") != "Slack alert sent|Telegram alert sent" {
		t.Errorf("timeline = %q", got)
	}

	// Done is done: another round, or a doorbell for it, sends nothing.
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("second round claimed %d deliveries", n)
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

	// The attempt comes between before and after (microseconds, as the database keeps
	// times), however long the round takes.
	before := b.clock.Now().Truncate(time.Microsecond)
	runOnce(t, d)
	after := b.clock.Now()
	logs := b.logs(t, id)
	if l := logs["slack"]; l.Status != "pending" || l.Attempts != 1 || l.Next == nil {
		t.Fatalf("slack after a 503 = %+v, want pending with a next attempt", l)
	}
	if next := *logs["slack"].Next; next.Sub(before) < 24*time.Second || next.Sub(after) > 36*time.Second {
		t.Errorf("first retry %s after the round began and %s after it ended, want 30s ± 20%% after the attempt", next.Sub(before), next.Sub(after))
	}
	if b.processed(t, id) {
		t.Fatal("event processed while Slack is pending")
	}
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("claimed %d deliveries before the retry is due", n)
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
	d := b.dispatcherOn(b.db, "a", func(c *dispatch.Config) {
		c.RetryDelays = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute}
	})
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
	if err := b.db.QueryRow(testkit.Context(t), "select id from lead_events where conversation_id = $1", id).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	n, err := outbox.New(b.db).Replay(testkit.Context(t), eventID, b.clock.Now())
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

	before := b.clock.Now().Truncate(time.Microsecond) // as the database keeps times
	runOnce(t, d)
	l := b.logs(t, id)["telegram"]
	if l.Status != "pending" || l.Next == nil {
		t.Fatalf("telegram = %+v, want pending", l)
	}
	if wait := l.Next.Sub(before); wait < 600*time.Second {
		t.Fatalf("retry %s after the round began, want the 600s Telegram asked for", wait)
	}
}

// A replica that dies mid-send leaves its deliveries leased. Only those, the
// sends it had in flight, are sent again, once their lease runs out, each
// said in the timeline to be a possible repeat; everything else goes out at
// once, with no wait and no repeat.
func TestAReplicaThatDiesCostsOnlyItsSendsInFlight(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const leads, inFlight = 20, 3
	b.leads(t, leads)
	// Replica "dead" opens every event, claims three sends per channel (its
	// concurrency) and dies before recording them.
	store := outbox.New(b.db)
	claimed, opened, err := store.Claim(testkit.Context(t), "dead", time.Minute, []leadrelay.Channel{leadrelay.ChannelSlack, leadrelay.ChannelTelegram}, []int{inFlight, inFlight}, leads, b.clock.Now())
	if err != nil || len(claimed) != 2*inFlight || opened != leads {
		t.Fatalf("claim = %d deliveries, %d events opened, %v", len(claimed), opened, err)
	}

	alive := b.dispatcherOn(b.db, "alive", func(c *dispatch.Config) { c.Concurrency = 50 })
	if n := runOnce(t, alive); n != 2*(leads-inFlight) {
		t.Fatalf("the surviving replica sent %d deliveries at once, want the %d nobody had in flight", n, 2*(leads-inFlight))
	}
	if n := countRows(t, b, "select count(*) from conversation_timeline where title like '%may go out twice'"); n != 0 {
		t.Fatalf("%d repeat notes before the dead replica's lease ran out", n)
	}
	b.clock.advance(61 * time.Second)
	if n := runOnce(t, alive); n != 2*inFlight {
		t.Fatalf("after the lease ran out the survivor sent %d deliveries, want the %d in flight", n, 2*inFlight)
	}
	if got := len(b.slack.Messages()); got != leads {
		t.Fatalf("slack got %d messages, want %d", got, leads)
	}
	if n := countRows(t, b, "select count(*) from conversation_timeline where title in ('Slack alert may go out twice', 'Telegram alert may go out twice')"); n != 2*inFlight {
		t.Errorf("%d repeat notes in the timeline, want one per send in flight (%d)", n, 2*inFlight)
	}
	if n := countRows(t, b, "select count(*) from notification_logs where status = 'sent' and attempts = 2"); n != 2*inFlight {
		t.Errorf("%d deliveries sent on a second attempt, want %d", n, 2*inFlight)
	}
	if n := countRows(t, b, "select count(*) from lead_events where not processed"); n != 0 {
		t.Errorf("%d events left unprocessed", n)
	}
}

// A send slower than its lease is not sent twice: the heartbeat keeps its
// lease, so another replica leaves it alone; and its outcome, arriving after
// the lease ran out with nobody else on it, is recorded as usual.
func TestASendSlowerThanItsLeaseIsNotRepeated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.lead(t, "Slow Send")
	gate := make(chan struct{})
	b.slack.Refuse(notifierstest.Answer{Hold: gate})
	a, other := b.dispatcher("a"), b.dispatcherOn(b.pool(t), "other")

	done := make(chan error, 1)
	go func() { _, err := a.RunOnce(testkit.Context(t)); done <- err }()
	testkit.WaitFor(t, time.Minute, "Slack to hold the send", testkit.Until(func() bool { return b.slack.Requests() == 1 }))
	testkit.WaitForQuery(t, b.db, time.Minute, "Telegram's outcome to be recorded",
		"select exists (select from notification_logs where conversation_id = $1 and channel = 'telegram' and status = 'sent')", id)

	b.clock.advance(2 * time.Minute) // twice the lease, while Slack holds the send
	if n, err := a.RenewLeases(testkit.Context(t)); err != nil || n != 1 {
		t.Fatalf("heartbeat renewed %d leases, %v; want the one send in flight", n, err)
	}
	if n := runOnce(t, other); n != 0 {
		t.Fatalf("another replica took %d deliveries whose send is alive", n)
	}
	b.clock.advance(2 * time.Minute) // the lease runs out; nobody takes over
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := b.logs(t, id)["slack"]; l.Status != "sent" || l.Attempts != 1 {
		t.Fatalf("slack = %+v, want sent on the first attempt", l)
	}
	if n := runOnce(t, other); n != 0 {
		t.Fatalf("another replica took %d deliveries after the outcome was recorded", n)
	}
	if n := len(b.slack.Messages()); n != 1 || b.slack.Requests() != 1 {
		t.Fatalf("slack got %d messages from %d requests, want 1", n, b.slack.Requests())
	}
	if !b.processed(t, id) {
		t.Error("event not processed")
	}
}

// Run's heartbeat renews the leases of its sends in flight on the dispatcher's clock, at least
// every third of the lease: while Slack holds a send, each time the clock passes a heartbeat the
// delivery's lease runs a whole lease from the clock's time. The lease is an hour, so no
// heartbeat of the wall clock can come within the test.
func TestTheHeartbeatRenewsLeasesOnTheDispatchersClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testkit.Context(t)
	const lease = time.Hour
	// A minute ahead of the database's clock (the events it stamps are due), in
	// microseconds as the database keeps times.
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Minute).Truncate(time.Microsecond))
	start := clock.Now()
	d := b.newDispatcher(b.db, b.senders[:1], dispatch.Config{Replica: "r", Lease: lease, SendTimeout: time.Minute}, clock, quiet())
	id := b.lead(t, "Held Lead")
	release := b.holdSlack()
	runCtx, cancel := context.WithCancel(ctx)
	var running sync.WaitGroup
	defer func() { release(); cancel(); running.Wait() }()
	running.Go(func() { d.Run(runCtx) })
	testkit.WaitFor(t, time.Minute, "Slack to hold the send", testkit.Until(func() bool { return b.slack.Requests() == 1 }))

	leaseUntil := func(until time.Time, what string) {
		t.Helper()
		testkit.WaitForQuery(t, b.db, time.Minute, what,
			"select coalesce(lease_expires_at = $2, false) from notification_logs where conversation_id = $1 and channel = 'slack'", id, until)
	}
	leaseUntil(start.Add(lease), "the claim's lease to run a lease from the clock's time")
	clock.Advance(lease / 3)
	leaseUntil(start.Add(lease/3+lease), "the first heartbeat to renew the lease")
	clock.Advance(lease / 3)
	leaseUntil(start.Add(2*lease/3+lease), "the second heartbeat to renew the lease")

	release()
	testkit.WaitForQuery(t, b.db, time.Minute, "Slack's outcome to be recorded",
		"select exists (select from notification_logs where conversation_id = $1 and channel = 'slack' and status = 'sent' and attempts = 1)", id)
	if n := len(b.slack.Messages()); n != 1 || b.slack.Requests() != 1 {
		t.Errorf("slack got %d messages from %d requests, want 1", n, b.slack.Requests())
	}
}

// Outcomes that a turn could not record (here: the event's row locked by the test past the
// dispatcher's lock_timeout) are tried again after a holdoff on the dispatcher's clock,
// 50 ms, then 100 ms, then 200 ms: each failed try waits on that clock, and no try comes
// before the clock reaches it; once the lock is gone the next try records the outcome, once.
func TestOutcomesThatCouldNotBeRecordedAreRetriedOnTheDispatchersClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testkit.Context(t)
	cfg, err := pgxpool.ParseConfig(b.url)
	if err != nil {
		t.Fatal(err)
	}
	// The production default (DB_LOCK_TIMEOUT), not 100ms: the try that records the outcome
	// once the lock is gone commits a timeline entry, which NOTIFYs, and a commit that
	// NOTIFYs waits for PostgreSQL's one NOTIFY queue lock (shared by every database of the
	// server) under lock_timeout too; a loaded machine takes that wait past 100ms, making a
	// fourth failed try. Each failed try waits the 2s by the wall clock.
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "2s"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// A minute ahead of the database's clock: the events it stamps are due.
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Minute))
	var logs testkit.Buffer
	d := b.newDispatcher(pool, b.senders[:1], dispatch.Config{
		Replica: "r", Lease: time.Minute, SendTimeout: sendTimeout, FrontendURL: "https://truenester.example",
	}, clock, slog.New(slog.NewTextHandler(&logs, nil)))
	id := b.lead(t, "Unrecorded Lead")
	release := b.holdSlack()
	done := make(chan error, 1)
	go func() { _, err := d.RunOnce(ctx); done <- err }()
	testkit.WaitFor(t, time.Minute, "Slack to hold the send", testkit.Until(func() bool { return b.slack.Requests() == 1 }))

	locker, err := b.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx)
	if _, err := locker.Exec(ctx, "select 1 from lead_events where conversation_id = $1 for update", id); err != nil {
		t.Fatal(err)
	}
	release()
	failures := func() int { return strings.Count(logs.String(), "recording outcomes failed; trying again") }
	waiting := func() {
		t.Helper()
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := clock.BlockUntilContext(waitCtx, 1); err != nil {
			t.Fatalf("the dispatcher does not wait on its clock after %d failed tries to record: %v", failures(), err)
		}
	}
	for try, holdoff := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		testkit.WaitFor(t, time.Minute, fmt.Sprintf("failed try %d to record", try+1), testkit.Until(func() bool { return failures() >= try+1 }))
		waiting()
		clock.Advance(holdoff - time.Millisecond)
		waiting()
		if n := failures(); n != try+1 {
			t.Fatalf("%d tries to record before the clock reached the holdoff of try %d (%s), want %d", n, try+1, holdoff, try+1)
		}
		if try == 2 {
			if err := locker.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := failures(); n != 3 {
		t.Errorf("%d failed tries to record, want 3", n)
	}
	if l := b.logs(t, id)["slack"]; l.Status != "sent" || l.Attempts != 1 {
		t.Errorf("slack = %+v, want sent on the first attempt", l)
	}
	if n := len(b.slack.Messages()); n != 1 || !b.processed(t, id) {
		t.Errorf("slack got %d messages (processed %v), want 1, processed", n, b.processed(t, id))
	}
}

// Sends in flight stay within the concurrency per channel, however large the
// backlog.
func TestSendsInFlightStayWithinTheConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const leads, concurrency = 30, 3
	b.leads(t, leads)
	gate := make(chan struct{})
	b.slack.Down(notifierstest.Answer{Hold: gate})
	d := b.dispatcherOn(b.db, "a", func(c *dispatch.Config) { c.Concurrency = concurrency })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	d.Wake()
	b.telegram.WaitFor(t, leads, time.Minute)
	testkit.WaitFor(t, time.Minute, "Slack to hold a send per slot", testkit.Until(func() bool { return b.slack.Requests() == concurrency }))
	if n := countRows(t, b, "select count(*) from notification_logs where channel = 'slack' and lease_owner is not null"); n != concurrency {
		t.Fatalf("%d Slack deliveries claimed while Slack holds %d, want %d", n, concurrency, concurrency)
	}
	close(gate)
	b.slack.WaitFor(t, leads, time.Minute)
	cancel()
	wg.Wait()
	if got := b.slack.MaxInFlight(); got > concurrency {
		t.Errorf("Slack saw %d requests at once, want at most %d", got, concurrency)
	}
	if got := b.telegram.MaxInFlight(); got > concurrency {
		t.Errorf("Telegram saw %d requests at once, want at most %d", got, concurrency)
	}
	if n := len(b.slack.Messages()); n != leads {
		t.Errorf("slack got %d messages, want %d", n, leads)
	}
}

// A channel that gives up hands the alert to its route's fallback: an SLA
// warning (Slack and Telegram) whose Slack webhook is gone goes to email. A
// lead.created alert, which email already carries, is not sent twice.
func TestAChannelThatGivesUpFallsBackToEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mail := b.withEmail(t)
	b.slack.Down(notifierstest.Answer{Status: 404, Body: "no_service"})
	id := b.lead(t, "Fallback Lead")
	b.event(t, "sla.warning", id)
	d := b.dispatcher("a")
	runOnce(t, d) // lead.created to 3 channels, sla.warning to 2; Slack fails both
	runOnce(t, d) // the fallback: sla.warning by email
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("a third round sent %d deliveries", n)
	}
	msgs := mail.Messages()
	if len(msgs) != 2 {
		t.Fatalf("the SMTP server got %d messages, want 2 (lead.created, and sla.warning as Slack's fallback)", len(msgs))
	}
	var fallback string
	if err := b.db.QueryRow(testkit.Context(t), `select l.fallback_for::text from notification_logs l join lead_events e on e.id = l.lead_event_id
		where e.conversation_id = $1 and e.event_type = 'sla.warning' and l.channel = 'email' and l.status = 'sent'`, id).Scan(&fallback); err != nil || fallback != "slack" {
		t.Fatalf("sla.warning's email delivery: fallback_for %q, %v; want sent as Slack's fallback", fallback, err)
	}
	if got := b.timelineAll(t, id); !contains(got, "Email alert queued instead of Slack") {
		t.Errorf("timeline = %q", got)
	}
	if n := countRows(t, b, "select count(*) from lead_events where not processed"); n != 0 {
		t.Errorf("%d events left unprocessed", n)
	}
}

// The default schedule outlasts an hour-long outage: Slack down for 61
// minutes, then back, and the alert arrives with no replay.
func TestAnHourLongOutageCostsNoAlert(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.dispatcher("a")
	id := b.lead(t, "Patient Lead")
	b.slack.Down(notifierstest.Answer{Status: 503, Body: "service unavailable"})
	for elapsed := time.Duration(0); elapsed <= 61*time.Minute; elapsed += time.Minute {
		runOnce(t, d)
		b.clock.advance(time.Minute)
	}
	if l := b.logs(t, id)["slack"]; l.Status != "pending" {
		t.Fatalf("after an hour of outage slack = %+v, want still pending", l)
	}
	b.slack.Recover()
	for range 60 {
		runOnce(t, d)
		b.clock.advance(time.Minute)
	}
	if l := b.logs(t, id)["slack"]; l.Status != "sent" {
		t.Fatalf("slack = %+v, want sent once Slack is back", l)
	}
	if n := len(b.slack.Messages()); n != 1 {
		t.Errorf("slack got %d messages, want 1", n)
	}
}

func countRows(t *testing.T, b *bundle, query string) int {
	t.Helper()
	var n int
	if err := b.db.QueryRow(testkit.Context(t), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (b *bundle) timelineAll(t *testing.T, leadID string) []string {
	t.Helper()
	rows, _ := b.db.Query(testkit.Context(t), "select title from conversation_timeline where conversation_id = $1 order by created_at, title", leadID)
	titles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return titles
}

func TestThreeReplicasDeliverEachOfAThousandAlertsOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const leads = 1000
	b.leads(t, leads)
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
	if err := b.db.QueryRow(testkit.Context(t), "select count(*) filter (where status = 'sent' and attempts = 1) from notification_logs").Scan(&sent); err != nil {
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
	d, err := dispatch.New(outbox.New(db), nil, notifiers.NewConsole(&out), dispatch.Config{Replica: "dev"}, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{db: db}
	id := b.lead(t, "Dev Lead")
	// Routed as production routes: notification_routes has lead.created and
	// sla.warning, not followup.due nor lead.status_changed.
	for _, typ := range []string{"sla.warning", "followup.due", "lead.status_changed"} {
		b.event(t, typ, id)
	}
	if n := runOnce(t, d); n != 2 {
		t.Fatalf("the console showed %d alerts, want 2 (lead.created, sla.warning)", n)
	}
	printed := out.String()
	if !strings.Contains(printed, "--- alert lead.created") || !strings.Contains(printed, "--- alert sla.warning") || !strings.Contains(printed, "Dev Lead") {
		t.Fatalf("console printed %q", printed)
	}
	if strings.Contains(printed, "followup.due") || strings.Contains(printed, "lead.status_changed") {
		t.Errorf("the console showed an alert production never sends:\n%s", printed)
	}
	if n := countRows(t, b, "select count(*) from lead_events where not processed"); n != 0 {
		t.Errorf("%d events left unprocessed", n)
	}
	if n := countRows(t, b, "select count(*) from notification_logs"); n != 0 {
		t.Errorf("the console wrote %d notification_logs rows; a line on a terminal is no delivery", n)
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
	mail := b.withEmail(t)
	id := b.lead(t, "Routing Lead")
	d := b.dispatcher("a")
	runOnce(t, d) // lead.created: all three
	for _, typ := range []string{"sla.warning", "sla.breached", "lead.status_changed"} {
		b.event(t, typ, id)
	}
	if n := runOnce(t, d); n != 5 {
		t.Fatalf("claimed %d deliveries, want 5 (sla.warning to 2 channels, sla.breached to 3)", n)
	}
	rows, err := b.db.Query(testkit.Context(t), `select e.event_type::text, coalesce(string_agg(l.channel::text, ',' order by l.channel::text), ''), bool_and(e.processed)
		from lead_events e left join notification_logs l on l.lead_event_id = e.id and l.status = 'sent'
		where e.conversation_id = $1 group by e.event_type`, id)
	if err != nil {
		t.Fatal(err)
	}
	type routed struct {
		EventType string
		Channels  string
		Processed bool
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[routed])
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range list {
		if !r.Processed {
			t.Errorf("%s not processed", r.EventType)
		}
		got[r.EventType] = r.Channels
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

// sorted is list in order: outcomes of different channels are recorded in
// whatever order their sends end.
func sorted(list []string) []string {
	list = slices.Clone(list)
	slices.Sort(list)
	return list
}

// In quiet spells the LISTEN connection is pinged (every 15s of the
// dispatcher's clock), which shows the part moving, and the connection
// still rings afterwards: a wait cut short by its context leaves it usable.
func TestListenKeepsRingingThroughQuietSpells(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clock := clockwork.NewFakeClockAt(time.Now().Add(time.Minute))
	var logs testkit.Buffer
	parts := health.New(slog.New(slog.NewTextHandler(&logs, nil)), clock)
	d := b.newDispatcher(b.db, b.senders, dispatch.Config{Replica: "quiet", Lease: time.Minute, SendTimeout: sendTimeout, Health: parts}, clock, quiet())
	ctx, cancel := context.WithCancel(testkit.Context(t))
	var running sync.WaitGroup
	defer func() { cancel(); running.Wait() }()
	running.Go(func() { d.Run(ctx) })
	running.Go(func() { d.Listen(ctx, b.url) })
	testkit.WaitFor(t, time.Minute, "LISTEN to work", testkit.Until(func() bool { return parts.States()["listen"] == "ok" }))

	// Two waiters on the clock: Run's heartbeat (a ticker, always waiting) and the
	// LISTEN connection waiting for its next ping.
	waiting := func() {
		t.Helper()
		if err := clock.BlockUntilContext(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	// 90s of quiet, longer than the part's bound (80s): only the pings keep it ready.
	for range 6 {
		waiting()
		clock.Advance(15 * time.Second)
	}
	waiting() // the sixth ping done, waiting again
	if got := parts.States()["listen"]; got != "ok" {
		t.Fatalf("LISTEN after 90s of quiet: %s", got)
	}
	// Only the doorbell wakes Run now (no sweep runs here).
	b.lead(t, "Quiet Lead")
	b.slack.WaitFor(t, 1, time.Minute)
	if strings.Contains(logs.String(), "listen is not working") {
		t.Errorf("LISTEN was lost meanwhile:\n%s", logs.String())
	}
}

// The two deliveries of one event end in two transactions at once: the one
// that records second waits for the event the first locked, then sees the
// first's outcome, so the event is processed exactly once both have ended.
func TestOutcomesOfOneEventInTwoTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testkit.Context(t)
	b.leads(t, 1)
	channels := []leadrelay.Channel{leadrelay.ChannelSlack, leadrelay.ChannelTelegram}
	claimed, opened, err := outbox.New(b.db).Claim(ctx, "replica-a", time.Minute, channels, []int{1, 1}, 10, b.clock.Now())
	if err != nil || opened != 1 || len(claimed) != 2 {
		t.Fatalf("claim: %d deliveries of %d events opened, err %v; want 2 of 1", len(claimed), opened, err)
	}
	record := func(tx pgx.Tx, d outbox.Delivery) error {
		body, _ := json.Marshal([]outbox.Outcome{{LogID: d.LogID, Attempt: d.Attempt, Status: leadrelay.DeliverySent}})
		_, err := tx.Exec(ctx, "select public.record_deliveries($1::jsonb, $2::public.notification_channel[], $3::timestamptz)",
			string(body), []string{"slack", "telegram"}, b.clock.Now())
		return err
	}
	first, err := b.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	if err := record(first, claimed[0]); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		tx, err := b.db.Begin(ctx)
		if err == nil {
			defer tx.Rollback(ctx)
			if err = record(tx, claimed[1]); err == nil {
				err = tx.Commit(ctx)
			}
		}
		second <- err
	}()
	testkit.WaitForQuery(t, b.db, time.Minute, "the second outcome to wait for the event's lock",
		"select exists (select from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%record_deliveries%')")
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the second outcome was not recorded")
	}
	if n := countRows(t, b, "select count(*) from lead_events where processed"); n != 1 {
		t.Fatalf("%d events processed, want 1", n)
	}
	if n := countRows(t, b, "select count(*) from notification_logs where status = 'sent'"); n != 2 {
		t.Fatalf("%d deliveries sent, want 2", n)
	}
}

// Replicas configured differently: a, with Slack only, opens a lead's event for Telegram
// too, because b, which has Telegram, has announced itself; each claims only its own
// channels, and the lead reaches both once.
func TestAReplicaOpensEventsForTheChannelsOfTheOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.newDispatcher(b.pool(t), b.senders[:1], dispatch.Config{Replica: "a", Lease: time.Minute, SendTimeout: sendTimeout}, b.clock, quiet())
	both := b.newDispatcher(b.pool(t), b.senders, dispatch.Config{Replica: "b", Lease: time.Minute, SendTimeout: sendTimeout}, b.clock, quiet())
	runOnce(t, both) // it announces itself
	id := b.lead(t, "Split Fleet")

	if n := runOnce(t, a); n != 1 {
		t.Fatalf("a claimed %d deliveries, want 1 (Slack)", n)
	}
	if b.processed(t, id) {
		t.Fatal("the event is processed with its Telegram alert unsent")
	}
	if n := runOnce(t, both); n != 1 {
		t.Fatalf("b claimed %d deliveries, want 1 (Telegram)", n)
	}
	if s, tg := len(b.slack.Messages()), len(b.telegram.Messages()); s != 1 || tg != 1 {
		t.Fatalf("slack got %d, telegram %d; want 1 each", s, tg)
	}
	if !b.processed(t, id) {
		t.Error("event not processed after both alerts")
	}
}

// A running dispatcher announces itself at once, then again every sixth of the liveness
// window (a minute) of its clock, on its heartbeat alone when nothing wakes it (no sweep, no
// doorbell): the heartbeat beats that often once the database named the window, where a
// third of the lease (20 min here) would let an idle replica drop out of the fleet.
func TestAReplicaAnnouncesItselfOnItsClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testkit.Context(t)
	clock := clockwork.NewFakeClockAt(time.Now().Truncate(time.Microsecond))
	start := clock.Now()
	d := b.newDispatcher(b.db, b.senders, dispatch.Config{Replica: "r", Lease: time.Hour, SendTimeout: time.Minute}, clock, quiet())
	runCtx, cancel := context.WithCancel(ctx)
	var running sync.WaitGroup
	defer func() { cancel(); running.Wait() }()
	running.Go(func() { d.Run(runCtx) })

	seen := func(at time.Time, what string) {
		t.Helper()
		testkit.WaitForQuery(t, b.db, time.Minute, what,
			"select exists (select from leadrelay_private.replica_channels where replica = 'r' and channels = '{slack,telegram}' and seen_at = $1)", at)
	}
	seen(start, "the replica to announce itself when it starts")
	for i := range 2 {
		// Run's one waiter on the clock, its heartbeat (made after the first announcement).
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
		seen(start.Add(time.Duration(i+1)*10*time.Second), "the idle replica to announce itself again a sixth of the window later")
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// TestMain lets a test start this package's program as a real process (the
// test binary re-executed with LEADRELAY_RUN_MAIN=1), to kill it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("LEADRELAY_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const testWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// postLead posts contactForm(name) and returns the lead's id; it fails the
// test unless the intake answers 201.
func postLead(t *testing.T, base, name string) string {
	t.Helper()
	return postContact(base, name).lead(t)
}

// postContact posts contactForm(name) to the intake.
func postContact(base, name string) intakeAnswer {
	res, err := http.Post(base+"/api/submit-contact", "application/json", strings.NewReader(contactForm(name)))
	if err != nil {
		return intakeAnswer{err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return intakeAnswer{status: res.StatusCode, body: string(body), err: err}
}

// contactForm is a contact form's lead from name, whose email is name's
// words joined by dots (Late Lead: late.lead@example.com).
func contactForm(name string) string {
	return fmt.Sprintf(`{"name": %q, "email": "%s@example.com", "message": "Is the villa still available?"}`, name, strings.ToLower(strings.ReplaceAll(name, " ", ".")))
}

// intakeAnswer is what the intake answered a post, or why it did not.
type intakeAnswer struct {
	status int
	body   string
	err    error
}

// lead is the id of the lead the answer saved; it fails the test unless
// the answer is 201.
func (a intakeAnswer) lead(t *testing.T) string {
	t.Helper()
	var got struct{ ID string }
	if a.err != nil || a.status != http.StatusCreated {
		t.Fatalf("intake: status %d, body %s, err %v; want 201", a.status, a.body, a.err)
	}
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatal(err)
	}
	return got.ID
}

// queued is one request the pg_net stand-in queued, as pg_net's worker
// would send it.
type queued struct {
	URL     string
	Headers map[string]string
	Body    []byte
}

func takeQueue(t *testing.T, db *pgx.Conn) []queued {
	t.Helper()
	rows, err := db.Query(testkit.Context(t), "delete from net.http_request_queue returning url, headers, body")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[queued])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func send(t *testing.T, q queued, mutate func(http.Header)) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, q.URL, bytes.NewReader(q.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range q.Headers {
		req.Header.Set(k, v)
	}
	if mutate != nil {
		mutate(req.Header)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// The pg_net doorbell: the lead's insert queues a signed webhook exactly as
// pg_net does; sent to the receiver, it gets 202 and the alert goes out.
// LISTEN is off and the sweep is an hour, so only the webhook can ring.
func TestPgNetWebhookRingsTheDispatcher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	slack := notifierstest.NewSlack(t)
	db := testkit.Connect(t, url)
	standin, err := os.ReadFile("testdata/pg_net_standin.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, string(standin)); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if _, err := db.Exec(ctx, `insert into leadrelay_private.settings (key, value) values ('webhook_url', $1), ('webhook_secret', $2)`,
		base+"/webhooks/lead-events", testWebhookSecret); err != nil {
		t.Fatal(err)
	}
	startServeOn(t, port, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"WEBHOOK_SECRET":        testWebhookSecret,
		"ENABLE_LISTEN":         "false",
		"NOTIFY_SWEEP_INTERVAL": "1h",
	})
	// Ready: the dispatcher has made its start-up round, so only a doorbell
	// can deliver the lead posted next.
	waitAnswer(t, base+"/readyz", http.StatusOK, nil)

	postLead(t, base, "Layla Hassan")
	reqs := takeQueue(t, db)
	if len(reqs) != 1 {
		t.Fatalf("pg_net queue holds %d requests, want 1", len(reqs))
	}
	q := reqs[0]
	if q.Headers["Content-Type"] != "application/json" || !strings.HasPrefix(q.Headers["webhook-signature"], "v1,") {
		t.Fatalf("queued headers %v", q.Headers)
	}

	// A forged, a tampered and a stale webhook are refused and change nothing.
	if got := send(t, q, func(h http.Header) { h.Set("webhook-signature", "v1,Zm9yZ2Vk") }); got != http.StatusUnauthorized {
		t.Errorf("forged signature: %d, want 401", got)
	}
	if got := send(t, q, func(h http.Header) { h.Del("webhook-signature") }); got != http.StatusUnauthorized {
		t.Errorf("missing signature: %d, want 401", got)
	}
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	if got := send(t, q, func(h http.Header) { h.Set("webhook-timestamp", stale) }); got != http.StatusUnauthorized {
		t.Errorf("stale timestamp: %d, want 401", got)
	}
	if n := slack.Requests(); n != 0 {
		t.Fatalf("a refused webhook led to %d Slack requests", n)
	}

	if got := send(t, q, nil); got != http.StatusAccepted {
		t.Fatalf("webhook: %d, want 202", got)
	}
	msgs := slack.WaitFor(t, 1, wait)
	if !strings.Contains(string(msgs[0].Body), "Layla Hassan") {
		t.Errorf("slack message: %s", msgs[0].Body)
	}

	// The same webhook again, late: 202, and nothing is sent twice. A second
	// lead's webhook, sent after it, shows the dispatcher has moved on.
	if got := send(t, q, nil); got != http.StatusAccepted {
		t.Fatalf("repeated webhook: %d, want 202", got)
	}
	postLead(t, base, "Second Lead")
	for _, q := range takeQueue(t, db) {
		send(t, q, nil)
	}
	testkit.WaitForQuery(t, db, wait, "both leads' Slack deliveries to be logged as sent",
		"select count(*) = 2 from notification_logs where channel = 'slack' and status = 'sent' and attempts = 1")
	if n := len(slack.Messages()); n != 2 {
		t.Fatalf("slack got %d messages, want 2", n)
	}
}

// A replica killed with SIGKILL in the middle of delivering leaves nothing
// undelivered, and costs at most its sends in flight: another replica
// delivers everything else at once, and those few once their lease runs
// out, each noted in the timeline as a possible repeat. The dead replica's
// lease (an hour) and send bound (half an hour) are out of reach of the
// wall clock; its leases run out when the test moves them, in SQL.
func TestAReplicaKilledMidDeliveryLosesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	slack := notifierstest.NewSlack(t)
	db := testkit.Connect(t, url)
	const leads, concurrency = 20, 3
	if _, err := db.Exec(ctx, `insert into conversations (form, name, email)
		select 'contact_form', 'Lead ' || g, 'lead' || g || '@example.com' from generate_series(1, $1) g`, leads); err != nil {
		t.Fatal(err)
	}

	// The first replica, a real process, finds Slack hanging: its sends are
	// in flight when it dies.
	slack.Down(notifierstest.Answer{Hang: true})
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "LEADRELAY_RUN_MAIN=1",
		"DATABASE_URL="+url, "PORT="+strconv.Itoa(freePort(t)), "SLACK_WEBHOOK_URL="+slack.URL,
		"NOTIFY_LEASE=1h", "NOTIFY_SEND_TIMEOUT=30m", "NOTIFY_CONCURRENCY="+strconv.Itoa(concurrency), "LOG_LEVEL=warn")
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // still running: the test failed early
			if err := cmd.Process.Kill(); err != nil {
				t.Errorf("kill the first replica: %v", err)
			}
			_ = cmd.Wait() // its error is the kill's
		}
	})
	testkit.WaitFor(t, wait, "the first replica to have its sends in flight", testkit.Until(func() bool { return slack.Requests() >= concurrency }))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the first replica exited cleanly after SIGKILL")
	}
	const leased = "select count(*) from notification_logs where status = 'pending' and lease_owner is not null"
	var held int
	if err := db.QueryRow(ctx, leased).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if inFlight := slack.Requests(); held != concurrency || inFlight != concurrency {
		t.Fatalf("the dead replica holds %d deliveries after %d Slack requests; want %d of each (NOTIFY_CONCURRENCY)\n%s", held, inFlight, concurrency, stderr.String())
	}

	// Slack is back; a second replica delivers the rest at once, and leaves
	// the sends in flight alone while their lease holds.
	slack.Recover()
	startServeEnv(t, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"NOTIFY_SWEEP_INTERVAL": "200ms",
	})
	testkit.WaitForQuery(t, db, wait, "every delivery not in flight to be sent",
		"select count(*) = $1 from notification_logs where channel = 'slack' and status = 'sent'", leads-concurrency)
	if err := db.QueryRow(ctx, leased).Scan(&held); err != nil || held != concurrency {
		t.Fatalf("%d deliveries still leased once the others were sent (%v), want the dead replica's %d", held, err, concurrency)
	}
	// Their lease runs out; the second replica sends them at its next sweep.
	if _, err := db.Exec(ctx, "update notification_logs set lease_expires_at = now() where status = 'pending' and lease_owner is not null"); err != nil {
		t.Fatal(err)
	}
	slack.WaitFor(t, leads, wait)
	testkit.WaitForQuery(t, db, wait, "every event to be processed", "select not exists (select from lead_events where not processed)")
	var sent, repeats int
	if err := db.QueryRow(ctx, "select count(*) from notification_logs where channel = 'slack' and status = 'sent'").Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if sent != leads {
		t.Fatalf("%d Slack deliveries logged as sent, want %d", sent, leads)
	}
	if err := db.QueryRow(ctx, "select count(*) from conversation_timeline where title = 'Slack alert may go out twice'").Scan(&repeats); err != nil {
		t.Fatal(err)
	}
	if repeats != concurrency {
		t.Errorf("%d possible repeats in the timeline, want the %d sends in flight", repeats, concurrency)
	}
	if n := len(slack.Messages()); n != leads {
		t.Errorf("slack accepted %d messages, want %d", n, leads)
	}
}

// A channel that gave up is sent again on the admin's word: through
// POST /admin/events/{id}/replay (Bearer ADMIN_API_KEY) or `leadrelay replay`.
func TestAdminReplaysFailedChannels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	slack := notifierstest.NewSlack(t)
	db := testkit.Connect(t, url)
	const adminKey = "test-admin-key-0123456789"
	slack.Down(notifierstest.Answer{Status: http.StatusGone, Body: "channel_is_archived"})
	base, _ := startServeEnv(t, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"ADMIN_API_KEY":         adminKey,
		"NOTIFY_SWEEP_INTERVAL": "200ms",
	})
	first, second := postLead(t, base, "First Failed"), postLead(t, base, "Second Failed")
	eventOf := func(lead string) string {
		var id string
		if err := db.QueryRow(ctx, "select id from lead_events where conversation_id = $1 and event_type = 'lead.created'", lead).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	const failed = "select status = 'failed' from notification_logs where conversation_id = $1"
	testkit.WaitForQuery(t, db, wait, "the first lead's Slack delivery to fail", failed, first)
	testkit.WaitForQuery(t, db, wait, "the second lead's Slack delivery to fail", failed, second)
	slack.Recover()

	replayURL := base + "/admin/events/" + eventOf(first) + "/replay"
	for _, auth := range []string{"", "Bearer wrong-key-0123456789", adminKey} {
		req := testkit.NewRequest(t, http.MethodPost, replayURL)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("replay with Authorization %q: %d, want 401", auth, res.StatusCode)
		}
	}
	req := testkit.NewRequest(t, http.MethodPost, replayURL)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ChannelsQueued int `json:"channels_queued"`
	}
	err = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if err != nil {
		t.Fatalf("replay: %d, not JSON: %v", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusAccepted || got.ChannelsQueued != 1 {
		t.Fatalf("replay: %d, %+v; want 202 with 1 channel queued", res.StatusCode, got)
	}
	req = testkit.NewRequest(t, http.MethodPost, base+"/admin/events/00000000-0000-0000-0000-000000000000/replay")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("replay of no event: %v, %v; want 404", res.StatusCode, err)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"leadrelay", "replay", "--failed"}, env(map[string]string{"DATABASE_URL": url}), &out, &out); err != nil {
		t.Fatalf("leadrelay replay --failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "queued 1 failed channel(s) of 1 event(s)") {
		t.Errorf("replay --failed said %q", out.String())
	}
	msgs := slack.WaitFor(t, 2, wait)
	names := string(msgs[0].Body) + string(msgs[1].Body)
	if !strings.Contains(names, "First Failed") || !strings.Contains(names, "Second Failed") {
		t.Fatalf("slack messages after replays: %s", names)
	}
}

// With no doorbell at all (no LISTEN, no webhook), the sweep still delivers.
// And a process with ENABLE_NOTIFICATION_WORKER=false only saves leads: the
// other process delivers them. Its /readyz is 200 and names its dispatcher
// and SLA engine off, and why.
func TestTheSweepDeliversWhenNoDoorbellRingsAndIntakeOnlyProcessesDoNotDeliver(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	intakeSlack, workerSlack := notifierstest.NewSlack(t), notifierstest.NewSlack(t)
	intake, _ := startServeEnv(t, map[string]string{
		"DATABASE_URL":               url,
		"SLACK_WEBHOOK_URL":          intakeSlack.URL,
		"ENABLE_NOTIFICATION_WORKER": "false",
	})
	startServeEnv(t, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     workerSlack.URL,
		"ENABLE_LISTEN":         "false",
		"NOTIFY_SWEEP_INTERVAL": "300ms",
	})
	body := waitAnswer(t, intake+"/readyz", http.StatusOK, nil)
	var ready struct {
		Parts map[string]string `json:"parts"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	for part, want := range map[string]string{
		"dispatcher": "off: ENABLE_NOTIFICATION_WORKER=false: another process delivers the alerts",
		"sla":        "off: ENABLE_NOTIFICATION_WORKER=false: another process runs the SLA jobs",
	} {
		if got := ready.Parts[part]; got != want {
			t.Errorf("the intake-only process's /readyz names %s %q, want %q", part, got, want)
		}
	}
	id := postLead(t, intake, "Swept Lead")
	workerSlack.WaitFor(t, 1, wait)
	db := testkit.Connect(t, url)
	testkit.WaitForQuery(t, db, wait, "the event to be processed", "select processed from lead_events where conversation_id = $1", id)
	if n := intakeSlack.Requests(); n != 0 {
		t.Fatalf("the intake-only process sent %d Slack requests", n)
	}
}

// LISTEN alone rings: with the sweep an hour apart and no webhook, a lead
// posted once the service listens has its alert at once.
func TestListenRingsTheDispatcher(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	slack := notifierstest.NewSlack(t)
	base, _ := startServeEnv(t, map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"NOTIFY_SWEEP_INTERVAL": "1h",
	})
	// A first lead takes whatever wake-up start-up left pending.
	postLead(t, base, "Listen One")
	slack.WaitFor(t, 1, wait)
	db := testkit.Connect(t, url)
	testkit.WaitForQuery(t, db, wait, "the service to LISTEN",
		"select exists (select from pg_stat_activity where datname = current_database() and query = 'listen lead_events')")
	postLead(t, base, "Listen Two")
	slack.WaitFor(t, 2, wait) // the sweep is an hour apart: any wait shorter shows LISTEN rang
}

// A replica deployed without its channel secrets takes leads and alerts
// nobody: it claims nothing from the outbox, so the alert waits for a
// replica that has a channel, which sends it. It says so: a warning at start
// naming what to set, and /readyz 200 (the intake works) naming the
// dispatcher off.
func TestAReplicaWithoutChannelsLeavesAlertsForOneThatHasThem(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	bare := serveOn(t, freePort(t), map[string]string{"DATABASE_URL": url, "NOTIFY_SWEEP_INTERVAL": "100ms"})
	waitHealthy(t, bare.base+"/readyz", http.StatusOK, bare.done)
	id := postLead(t, bare.base, "Waiting Lead")

	// A second replica with the same mistake, ready: a dispatcher that ran
	// there would have made its start-up round, which opens every waiting
	// event, before /readyz said 200.
	twin := serveOn(t, freePort(t), map[string]string{"DATABASE_URL": url, "NOTIFY_SWEEP_INTERVAL": "100ms"})
	body := waitAnswer(t, twin.base+"/readyz", http.StatusOK, twin.done)
	var ready struct {
		Parts map[string]string `json:"parts"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil {
		t.Fatalf("/readyz: %v: %s", err, body)
	}
	if got := ready.Parts["dispatcher"]; !strings.HasPrefix(got, "off: no notification channel is configured") || !strings.Contains(got, "SLACK_WEBHOOK_URL") {
		t.Errorf("/readyz names the dispatcher %q, want it off, saying what to set", got)
	}
	for _, r := range []served{bare, twin} {
		logs := r.logs.String()
		if !strings.Contains(logs, `"level":"WARN","msg":"no notification channel is configured`) || !strings.Contains(logs, "SLACK_WEBHOOK_URL") ||
			!strings.Contains(logs, "EMAIL_HOST") || !strings.Contains(logs, "TELEGRAM_BOT_TOKEN") {
			t.Errorf("a replica without channels did not warn, naming what to set:\n%s", logs)
		}
	}
	waiting := func() (opened, processed bool, logs int) {
		t.Helper()
		if err := db.QueryRow(ctx, `select e.deliveries_opened_at is not null, e.processed, (select count(*) from notification_logs l where l.lead_event_id = e.id)
			from lead_events e where e.conversation_id = $1 and e.event_type = 'lead.created'`, id).Scan(&opened, &processed, &logs); err != nil {
			t.Fatal(err)
		}
		return opened, processed, logs
	}
	if opened, processed, logs := waiting(); opened || processed || logs != 0 {
		t.Fatalf("with no replica that has a channel, the lead's event is opened: %v, processed: %v, with %d deliveries; want it waiting", opened, processed, logs)
	}

	slack := notifierstest.NewSlack(t)
	serveOn(t, freePort(t), map[string]string{"DATABASE_URL": url, "SLACK_WEBHOOK_URL": slack.URL})
	msgs := slack.WaitFor(t, 1, wait)
	if !strings.Contains(string(msgs[0].Body), "Waiting Lead") {
		t.Errorf("slack message: %s", msgs[0].Body)
	}
	testkit.WaitForQuery(t, db, wait, "the event to be processed, its Slack delivery sent",
		`select e.processed and exists (select from notification_logs l where l.lead_event_id = e.id and l.channel = 'slack' and l.status = 'sent')
		from lead_events e where e.conversation_id = $1 and e.event_type = 'lead.created'`, id)
}

// `leadrelay dev` (make run) with no channel configured prints each alert on
// its terminal, routed as production routes it, and the event is done.
func TestDevPrintsAlertsWhenNoChannelIsConfigured(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	dev := startDev(t, freePort(t), map[string]string{"DATABASE_URL": patientURL(url)})
	waitHealthy(t, dev.base+"/readyz", http.StatusOK, dev.done)
	id := postLead(t, dev.base, "Terminal Lead")
	testkit.WaitFor(t, wait, "the lead's alert on the terminal", testkit.Until(func() bool {
		return strings.Contains(dev.stdout.String(), "--- alert lead.created (lead "+id+")") && strings.Contains(dev.stdout.String(), "Terminal Lead")
	}))
	testkit.WaitForQuery(t, testkit.Connect(t, url), wait, "the printed event to be processed",
		"select processed from lead_events where conversation_id = $1 and event_type = 'lead.created'", id)
	if err := dev.stop(); err != nil {
		t.Fatalf("dev: %v\n%s", err, dev.stderr.String())
	}
}

// Two replicas configured differently on one database: a has Slack only, b Slack and
// Telegram. Every lead posted to a (whose doorbell wakes a, so a opens most events) reaches
// both Slack and Telegram exactly once: a opens each event for Telegram too, as b has
// announced it, and b claims those deliveries.
func TestReplicasWithDifferentChannelsAlertEveryLeadOnEveryChannel(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	slack, telegram := notifierstest.NewSlack(t), notifierstest.NewTelegram(t)
	db := testkit.Connect(t, url)
	// b finds its work through its sweep only (a's openings ring no doorbell of b's).
	b := serveOn(t, freePort(t), map[string]string{
		"DATABASE_URL":          url,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"TELEGRAM_BOT_TOKEN":    telegram.Token,
		"TELEGRAM_CHAT_ID":      telegram.ChatID,
		"TELEGRAM_API_BASE_URL": telegram.BaseURL,
		"ENABLE_LISTEN":         "false",
		"NOTIFY_SWEEP_INTERVAL": "200ms",
	})
	waitAnswer(t, b.base+"/readyz", http.StatusOK, b.done) // its dispatcher has announced itself
	a := serveOn(t, freePort(t), map[string]string{"DATABASE_URL": url, "SLACK_WEBHOOK_URL": slack.URL})
	waitAnswer(t, a.base+"/readyz", http.StatusOK, a.done)

	const leads = 10
	var names []string
	for i := range leads {
		names = append(names, fmt.Sprintf("Fleet Lead %c", 'A'+i))
		postLead(t, a.base, names[i])
	}
	slack.WaitFor(t, leads, wait)
	telegram.WaitFor(t, leads, wait)
	testkit.WaitForQuery(t, db, wait, "every event processed", "select not exists (select from lead_events where not processed)")
	for _, peer := range []struct {
		name     string
		messages []notifierstest.Message
	}{{"Slack", slack.Messages()}, {"Telegram", telegram.Messages()}} {
		for _, name := range names {
			n := 0
			for _, m := range peer.messages {
				if strings.Contains(string(m.Body), name) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s got %d alerts of %s, want 1", peer.name, n, name)
			}
		}
	}
}

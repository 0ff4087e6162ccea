//go:build chaos

// Package chaos is leadrelay's chaos run (`make chaos`; not part of make
// test): three replicas of the real binary on a private PostgreSQL, real
// Slack, Telegram and SMTP peers, a steady stream of leads, and on cue:
// SIGKILLs of replicas (each restarted a second later), a SIGSTOP of the SLA
// leader, a Slack outage, a hanging Telegram, a refusing SMTP server and a
// Postgres restart. Then it drains and reports: leads acknowledged vs saved,
// per-channel deliveries missing and duplicated, duplicates per kill, 503s
// from live replicas, drain time and SLA lateness. It fails, loudly, when an
// acknowledged lead is lost, a delivery is missing, or an SLA alert is later
// than two leases.
//
// Settings (environment): CHAOS_DURATION (load, default 3m), CHAOS_RATE
// (leads/s, 20), CHAOS_KILLS (7), CHAOS_SLACK_OUTAGE (1m), CHAOS_PAUSE (the
// leader's SIGSTOP, 20s), CHAOS_DRAIN_TIMEOUT (5m), CHAOS_HOT_WINDOW (the
// HOT leads' SLA window, 30s). CHAOS_KEEP=1 keeps the replicas' logs.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay/dev/devpostgres"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

type settings struct {
	duration, slackOutage, pause, drainTimeout, hotWindow time.Duration
	rate, kills                                           int
}

func load(t *testing.T) settings {
	s := settings{duration: 3 * time.Minute, slackOutage: time.Minute, pause: 20 * time.Second,
		drainTimeout: 5 * time.Minute, hotWindow: 30 * time.Second, rate: 20, kills: 7}
	for name, dst := range map[string]*time.Duration{"CHAOS_DURATION": &s.duration, "CHAOS_SLACK_OUTAGE": &s.slackOutage,
		"CHAOS_PAUSE": &s.pause, "CHAOS_DRAIN_TIMEOUT": &s.drainTimeout, "CHAOS_HOT_WINDOW": &s.hotWindow} {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q is not a positive duration", name, v)
			}
			*dst = d
		}
	}
	for name, dst := range map[string]*int{"CHAOS_RATE": &s.rate, "CHAOS_KILLS": &s.kills} {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 10000 {
				t.Fatalf("%s=%q is not a whole number from 0 to 10000", name, v)
			}
			*dst = n
		}
	}
	if s.slackOutage >= s.duration {
		t.Fatalf("CHAOS_SLACK_OUTAGE (%s) must be shorter than CHAOS_DURATION (%s)", s.slackOutage, s.duration)
	}
	return s
}

const (
	replicas    = 3
	slaLease    = 3 * time.Second
	notifyLease = 30 * time.Second
	concurrency = 8 // NOTIFY_CONCURRENCY, sends in flight per channel and replica
	// The retry schedule spans the Slack outage with room to spare.
	retryDelays = "1s,2s,4s,8s,15s,30s,30s,30s,30s,30s"
)

func TestChaos(t *testing.T) {
	cfg := load(t)
	// Everything is bounded: the run, the drain and the set-up.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration+cfg.drainTimeout+5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "leadrelay-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CHAOS_KEEP") != "" {
			t.Logf("replicas' logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	c := &chaos{t: t, cfg: cfg, dir: dir, start: time.Now(), faultsAt: map[string][]time.Time{}}

	c.step("build the binary")
	bin := filepath.Join(dir, "leadrelay")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../cmd/leadrelay").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c.step("start a private PostgreSQL (never the shared one)")
	pgLog, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer pgLog.Close()
	pg, err := devpostgres.Start(ctx, devpostgres.Options{Log: pgLog})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	c.pg = pg
	migrate := exec.CommandContext(ctx, bin, "migrate")
	migrate.Env = append(os.Environ(), "DATABASE_URL="+pg.URL)
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	db, err := pgxpool.New(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c.db = db
	c.exec(ctx, "update sla_policies set response_window = $1::interval where quality = 'hot'", cfg.hotWindow.String())

	c.slack = notifierstest.NewSlack(t)
	c.telegram = notifierstest.NewTelegram(t)
	c.smtp = notifierstest.NewSMTP(t, notifierstest.SMTPOptions{})
	c.env = []string{
		"DATABASE_URL=" + pg.URL,
		"LOG_LEVEL=info",
		"FRONTEND_URL=https://admin.chaos.invalid",
		"RATE_LIMIT_PER_MINUTE=10000000", "RATE_LIMIT_BURST=1000000",
		"SLACK_WEBHOOK_URL=" + c.slack.URL,
		"TELEGRAM_BOT_TOKEN=" + c.telegram.Token, "TELEGRAM_CHAT_ID=" + c.telegram.ChatID, "TELEGRAM_API_BASE_URL=" + c.telegram.BaseURL,
		"EMAIL_HOST=" + c.smtp.Host, "EMAIL_PORT=" + strconv.Itoa(c.smtp.Port), "EMAIL_FROM=leadrelay@chaos.invalid", "EMAIL_TO=team@chaos.invalid",
		"NOTIFY_RETRY_DELAYS=" + retryDelays,
		"NOTIFY_SWEEP_INTERVAL=1s",
		"NOTIFY_SEND_TIMEOUT=5s",
		"NOTIFY_LEASE=" + notifyLease.String(),
		"NOTIFY_CONCURRENCY=" + strconv.Itoa(concurrency),
		"SLA_LEADER_LEASE=" + slaLease.String(),
		"SLA_TICK_INTERVAL=500ms",
	}
	c.bin = bin

	c.step("start three replicas")
	for i := range replicas {
		r := &replica{name: fmt.Sprintf("r%d", i+1), port: freePort(t)}
		c.replicas = append(c.replicas, r)
		c.startReplica(ctx, r)
	}
	for _, r := range c.replicas {
		c.waitReady(ctx, r)
	}
	defer c.stopAll()

	// From here the timeline counts from the start of the load, which the
	// faults are scheduled by.
	c.mu.Lock()
	c.start = time.Now()
	c.mu.Unlock()
	c.step(fmt.Sprintf("load: %d leads/s for %s (one in ten HOT, SLA window %s)", cfg.rate, cfg.duration, cfg.hotWindow))
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		c.load(ctx)
	}()
	c.faults(ctx)
	<-loadDone
	loadEnd := time.Now()
	c.step("load over; draining")
	drained := c.drain(ctx, loadEnd)
	c.report(ctx, loadEnd, drained)
}

type chaos struct {
	t     *testing.T
	cfg   settings
	dir   string
	start time.Time
	pg    *devpostgres.Server
	db    *pgxpool.Pool
	bin   string
	env   []string

	slack    *notifierstest.Slack
	telegram *notifierstest.Telegram
	smtp     *notifierstest.SMTP
	replicas []*replica

	mu       sync.Mutex
	timeline []string
	acks     map[string]ack // lead id -> its acknowledgement
	attempts []attempt
	pgDown   [][2]time.Time         // Postgres restarts: from the stop to 5s after it answers again
	faultsAt map[string][]time.Time // when each kind of fault struck: kill, pause, postgres
	kills    int
	unacked  int
}

type ack struct {
	name string
	hot  bool
	at   time.Time
}

type attempt struct {
	replica string
	at, end time.Time // asked, answered
	status  int       // 0: no answer (refused, timed out)
	live    bool
}

type replica struct {
	name string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	down   [][2]time.Time // killed or paused, until it answers again
	state  string         // up, killed, paused
}

func (c *chaos) step(what string) {
	c.mu.Lock()
	line := fmt.Sprintf("%7.1fs  %s", time.Since(c.start).Seconds(), what)
	c.timeline = append(c.timeline, line)
	c.mu.Unlock()
	fmt.Println("chaos:", line)
}

func (c *chaos) exec(ctx context.Context, sql string, args ...any) {
	c.t.Helper()
	if _, err := c.db.Exec(ctx, sql, args...); err != nil {
		c.t.Fatalf("%s: %v", sql, err)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startReplica runs `leadrelay serve` for r, its output appended to its log.
func (c *chaos) startReplica(ctx context.Context, r *replica) {
	logf, err := os.OpenFile(filepath.Join(c.dir, r.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "serve")
	cmd.Env = append(os.Environ(), append(slices.Clone(c.env), "PORT="+strconv.Itoa(r.port))...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The replicas die with the chaos run, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", r.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	r.mu.Lock()
	r.cmd, r.exited, r.state = cmd, exited, "up"
	r.mu.Unlock()
}

func (r *replica) base() string { return fmt.Sprintf("http://127.0.0.1:%d", r.port) }

func (r *replica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd.Process.Pid
}

// isLive says whether r was neither killed nor paused at t (a restarted
// replica counts as down until it answered /healthz again).
func (r *replica) isLive(at time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.down {
		if !at.Before(d[0]) && (d[1].IsZero() || at.Before(d[1])) {
			return false
		}
	}
	return true
}

func (r *replica) markDown(state string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = state
	r.down = append(r.down, [2]time.Time{time.Now()})
}

func (r *replica) markUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = "up"
	if n := len(r.down); n > 0 && r.down[n-1][1].IsZero() {
		r.down[n-1][1] = time.Now()
	}
}

// waitAnswers waits (bounded) until r answers path with want.
func (c *chaos) waitAnswers(ctx context.Context, r *replica, path string, want int, within time.Duration) {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(r.base() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.t.Fatalf("%s did not answer %s with %d within %s (see %s)", r.name, path, want, within, filepath.Join(c.dir, r.name+".log"))
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

func (c *chaos) waitReady(ctx context.Context, r *replica) {
	c.waitAnswers(ctx, r, "/readyz", http.StatusOK, time.Minute)
}

func (c *chaos) kill(ctx context.Context, r *replica) {
	c.step("SIGKILL " + r.name)
	r.markDown("killed")
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not die of SIGKILL within 30s", r.name)
	}
	c.mu.Lock()
	c.kills++
	c.faultsAt["kill"] = append(c.faultsAt["kill"], time.Now())
	c.mu.Unlock()
	time.Sleep(time.Second) // the platform's restart delay, played
	c.startReplica(ctx, r)
	c.waitAnswers(ctx, r, "/healthz", http.StatusOK, time.Minute)
	r.markUp()
	c.step(r.name + " restarted")
}

func (c *chaos) stopAll() {
	for _, r := range c.replicas {
		r.mu.Lock()
		cmd, exited := r.cmd, r.exited
		r.mu.Unlock()
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}

// leader returns the replica that holds the SLA lease (its holder name ends
// in the process id), or nil.
func (c *chaos) leader(ctx context.Context) *replica {
	var holder string
	if err := c.db.QueryRow(ctx, "select coalesce(holder, '') from leader_leases where name = 'sla' and expires_at > clock_timestamp()").Scan(&holder); err != nil {
		return nil
	}
	for _, r := range c.replicas {
		if strings.Contains(holder, fmt.Sprintf("-%d-", r.pid())) {
			return r
		}
	}
	return nil
}

// faults plays the fault schedule, scaled to the load's duration.
func (c *chaos) faults(ctx context.Context) {
	d := c.cfg.duration
	type fault struct {
		at   time.Duration
		name string
		do   func()
	}
	var fs []fault
	for i := range c.cfg.kills {
		at := d / 10
		if c.cfg.kills > 1 {
			at += time.Duration(float64(d*7/10) * float64(i) / float64(c.cfg.kills-1))
		}
		fs = append(fs, fault{at, "kill", func() {
			// Any replica but a paused one, in turn.
			for k := range replicas {
				r := c.replicas[(i+k)%replicas]
				r.mu.Lock()
				up := r.state == "up"
				r.mu.Unlock()
				if up {
					c.kill(ctx, r)
					return
				}
			}
		}})
	}
	fs = append(fs,
		fault{d * 15 / 100, "slack outage", func() {
			c.step(fmt.Sprintf("Slack down (500) for %s", c.cfg.slackOutage))
			c.slack.Down(notifierstest.Answer{Status: http.StatusInternalServerError, Body: "internal_error"})
			time.AfterFunc(c.cfg.slackOutage, func() {
				c.slack.Recover()
				c.step("Slack back")
			})
		}},
		fault{d * 35 / 100, "pause the SLA leader", func() {
			r := c.leader(ctx)
			if r == nil {
				c.step("no SLA leader to pause (lease between holders); pausing r1")
				r = c.replicas[0]
			}
			c.step(fmt.Sprintf("SIGSTOP %s (the SLA leader) for %s", r.name, c.cfg.pause))
			r.markDown("paused")
			c.mu.Lock()
			c.faultsAt["pause"] = append(c.faultsAt["pause"], time.Now())
			c.mu.Unlock()
			pid := r.pid()
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			time.AfterFunc(c.cfg.pause, func() {
				_ = syscall.Kill(pid, syscall.SIGCONT)
				r.markUp()
				c.step("SIGCONT " + r.name)
			})
		}},
		fault{d * 50 / 100, "telegram hangs", func() {
			c.step("Telegram hangs for 15s")
			c.telegram.Down(notifierstest.Answer{Hang: true})
			time.AfterFunc(15*time.Second, func() {
				c.telegram.Recover()
				c.step("Telegram answers again")
			})
		}},
		fault{d * 55 / 100, "smtp refuses", func() {
			c.step("SMTP refuses (451) for 10s")
			c.smtp.Down(notifierstest.Answer{Status: 451, Body: "try again later"})
			time.AfterFunc(10*time.Second, func() {
				c.smtp.Recover()
				c.step("SMTP accepts again")
			})
		}},
		fault{d * 65 / 100, "postgres restart", func() {
			c.step("restart PostgreSQL")
			from := time.Now()
			c.mu.Lock()
			c.faultsAt["postgres restart"] = append(c.faultsAt["postgres restart"], from)
			c.mu.Unlock()
			if err := c.pg.Restart(ctx); err != nil {
				c.t.Fatalf("restart postgres: %v", err)
			}
			c.mu.Lock()
			c.pgDown = append(c.pgDown, [2]time.Time{from, time.Now().Add(5 * time.Second)})
			c.mu.Unlock()
			c.step(fmt.Sprintf("PostgreSQL answers again after %s", time.Since(from).Round(time.Millisecond)))
		}},
	)
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].at < fs[j].at })
	for _, f := range fs {
		c.mu.Lock()
		wait := time.Until(c.start.Add(f.at))
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		f.do()
	}
}

// load posts leads at the configured rate for the configured duration. A
// lead not acknowledged is retried on the next replica with the same
// Idempotency-Key, as the website does, for up to 30 seconds.
func (c *chaos) load(ctx context.Context) {
	c.acks = map[string]ack{}
	client := &http.Client{Timeout: 5 * time.Second}
	interval := time.Second / time.Duration(max(c.cfg.rate, 1))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(c.cfg.duration)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	var n atomic.Int64
	for time.Now().Before(end) && ctx.Err() == nil {
		<-tick.C
		i := int(n.Add(1))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.postLead(ctx, client, i)
		})
	}
	wg.Wait()
}

func (c *chaos) postLead(ctx context.Context, client *http.Client, i int) {
	name := fmt.Sprintf("Chaos Lead %06d", i)
	hot := i%10 == 0
	path, body := "/api/submit-contact", fmt.Sprintf(`{"name":%q,"email":"lead%06d@example.com","message":"Is the villa still available? (%d)"}`, name, i, i)
	if hot {
		path, body = "/api/chatbot/leads", fmt.Sprintf(`{"session_id":"chaos-%06d","name":%q,"email":"hot%06d@example.com","quality":"hot","messages":[{"role":"user","content":"I want to buy this week (%d)"}]}`, i, name, i, i)
	}
	key := fmt.Sprintf("chaos-%06d", i)
	deadline := time.Now().Add(30 * time.Second)
	for try := 0; time.Now().Before(deadline) && ctx.Err() == nil; try++ {
		r := c.replicas[(i+try)%replicas]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base()+path, strings.NewReader(body))
		if err != nil {
			c.t.Errorf("request: %v", err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		at := time.Now()
		resp, err := client.Do(req)
		a := attempt{replica: r.name, at: at}
		var id string
		if err == nil {
			a.status = resp.StatusCode
			var got struct{ ID string }
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if json.Unmarshal(raw, &got) == nil {
				id = got.ID
			}
			if resp.StatusCode >= 400 && resp.StatusCode != http.StatusServiceUnavailable {
				c.t.Errorf("lead %d: %s answered %d: %s", i, r.name, resp.StatusCode, raw)
			}
		}
		// Live: neither killed nor paused when asked, nor by the answer.
		a.end = time.Now()
		a.live = r.isLive(at) && r.isLive(a.end)
		c.mu.Lock()
		c.attempts = append(c.attempts, a)
		if (a.status == http.StatusCreated || a.status == http.StatusOK) && id != "" {
			c.acks[id] = ack{name: name, hot: hot, at: time.Now()}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(200+rand.IntN(300)) * time.Millisecond):
		}
	}
	c.mu.Lock()
	c.unacked++
	c.mu.Unlock()
}

// drain waits until every event is processed and every HOT lead's deadline
// has passed and been dealt with; it returns when that happened.
func (c *chaos) drain(ctx context.Context, loadEnd time.Time) time.Time {
	deadline := time.Now().Add(c.cfg.drainTimeout)
	outboxEmpty := false
	for {
		var pending, slaDue int
		var lastDeadline time.Time
		err := c.db.QueryRow(ctx, `select
			(select count(*) from lead_events where not processed),
			(select count(*) from conversations where quality = 'hot' and first_response_at is null and not sla_breached),
			(select coalesce(max(sla_response_deadline), '-infinity') from conversations where quality = 'hot')`).Scan(&pending, &slaDue, &lastDeadline)
		if err == nil && pending == 0 && !outboxEmpty {
			outboxEmpty = true
			c.step(fmt.Sprintf("outbox empty %s after the load ended (every event delivered on every channel)", time.Since(loadEnd).Round(time.Millisecond)))
		}
		if err == nil && pending == 0 && slaDue == 0 && time.Now().After(lastDeadline) {
			at := time.Now()
			c.step(fmt.Sprintf("drained %s after the load ended", at.Sub(loadEnd).Round(time.Millisecond)))
			return at
		}
		if time.Now().After(deadline) {
			c.t.Errorf("not drained within CHAOS_DRAIN_TIMEOUT (%s): %d events unprocessed, %d HOT leads unbreached (err %v)", c.cfg.drainTimeout, pending, slaDue, err)
			return time.Now()
		}
		select {
		case <-ctx.Done():
			c.t.Fatal("chaos run out of time while draining")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

var (
	leadLink  = regexp.MustCompile(`/admin/conversations/([0-9a-f-]{36})`)
	messageID = regexp.MustCompile(`(?mi)^Message-ID:\s*<leadrelay\.([0-9a-f-]{36})@`)
)

func kindOf(text string) string {
	switch {
	case strings.Contains(text, "SLA warning"):
		return "sla.warning"
	case strings.Contains(text, "SLA breached"):
		return "sla.breached"
	case strings.Contains(text, "Follow-up"):
		return "followup"
	default:
		return "lead.created"
	}
}

type delivery struct {
	channel, lead, kind string
}

// report prints the figures and fails the run where the product's promises
// were broken.
func (c *chaos) report(ctx context.Context, loadEnd, drained time.Time) {
	t := c.t
	// Acknowledged vs saved.
	ids := make([]string, 0, len(c.acks))
	for id := range c.acks {
		ids = append(ids, id)
	}
	var saved, savedTotal int
	if err := c.db.QueryRow(ctx, "select count(*) filter (where id = any($1::uuid[])), count(*) from conversations", ids).Scan(&saved, &savedTotal); err != nil {
		t.Fatal(err)
	}

	// Expected deliveries: each event to each of its routed channels.
	rows, err := c.db.Query(ctx, `select e.conversation_id::text, e.event_type::text, r.channel::text
		from lead_events e join notification_routes r on r.event_type = e.event_type
		where r.channel in ('slack', 'telegram', 'email')`)
	if err != nil {
		t.Fatal(err)
	}
	expected := map[delivery]int{}
	for rows.Next() {
		var d delivery
		if err := rows.Scan(&d.lead, &d.kind, &d.channel); err != nil {
			t.Fatal(err)
		}
		expected[d] = 0
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	events := map[string]delivery{} // event id -> lead and kind, for email's Message-ID
	rows, err = c.db.Query(ctx, "select id::text, conversation_id::text, event_type::text from lead_events")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var d delivery
		if err := rows.Scan(&id, &d.lead, &d.kind); err != nil {
			t.Fatal(err)
		}
		events[id] = d
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	got := map[delivery]int{}
	received := map[delivery]time.Time{} // first arrival
	arrivals := map[delivery][]time.Time{}
	note := func(d delivery, at time.Time) {
		got[d]++
		arrivals[d] = append(arrivals[d], at)
		if first, ok := received[d]; !ok || at.Before(first) {
			received[d] = at
		}
	}
	for _, m := range c.slack.Messages() {
		if l := leadLink.FindSubmatch(m.Body); l != nil {
			note(delivery{"slack", string(l[1]), kindOf(string(m.Body))}, m.Received)
		}
	}
	for _, m := range c.telegram.Messages() {
		if l := leadLink.FindSubmatch(m.Body); l != nil {
			note(delivery{"telegram", string(l[1]), kindOf(string(m.Body))}, m.Received)
		}
	}
	for _, m := range c.smtp.Messages() {
		if id := messageID.FindSubmatch(m.Data); id != nil {
			if e, ok := events[string(id[1])]; ok {
				note(delivery{"email", e.lead, e.kind}, m.Received)
			}
		}
	}
	type channelFigures struct{ expected, delivered, missing, duplicated, extra int }
	figures := map[string]*channelFigures{"slack": {}, "telegram": {}, "email": {}}
	for d := range expected {
		f := figures[d.channel]
		f.expected++
		switch n := got[d]; {
		case n == 0:
			f.missing++
		default:
			f.delivered++
			if n > 1 {
				f.duplicated += n - 1
			}
		}
	}
	for d := range got {
		if _, ok := expected[d]; !ok {
			figures[d.channel].extra++
		}
	}

	// Each repeat, by the fault it followed: the last fault struck within a
	// delivery lease (NOTIFY_LEASE) plus a send's timeout before it arrived.
	c.mu.Lock()
	faultsAt := map[string][]time.Time{}
	for k, v := range c.faultsAt {
		faultsAt[k] = slices.Clone(v)
	}
	c.mu.Unlock()
	repeatsAfter := map[string]int{}
	perKill := map[time.Time]int{} // repeats after each SIGKILL
	for _, at := range arrivals {
		slices.SortFunc(at, time.Time.Compare)
		for _, repeat := range at[1:] {
			cause, when := "no fault", time.Time{}
			for kind, times := range faultsAt {
				for _, f := range times {
					if f.Before(repeat) && repeat.Sub(f) <= notifyLease+10*time.Second && f.After(when) {
						cause, when = kind, f
					}
				}
			}
			repeatsAfter[cause]++
			if cause == "kill" {
				perKill[when]++
			}
		}
	}
	var killCounts []int
	for _, k := range faultsAt["kill"] {
		killCounts = append(killCounts, perKill[k])
	}

	// 503s and other failures from live replicas.
	c.mu.Lock()
	loadStart := c.start
	attempts := slices.Clone(c.attempts)
	pgDown := slices.Clone(c.pgDown)
	kills, unacked := c.kills, c.unacked
	c.mu.Unlock()
	// A request overlapping a restart (asked just before it, answered
	// during it) counts as during it.
	inPgRestart := func(a attempt) bool {
		for _, w := range pgDown {
			if a.at.Before(w[1]) && !a.end.Before(w[0]) {
				return true
			}
		}
		return false
	}
	var live503, live503Restart, liveNoAnswer, total int
	var outside []string            // the first 503s from live replicas outside a restart
	var first503, last503 time.Time // the 503s around the restart, from asked to answered
	var worst time.Duration         // the longest run of 503s from one live replica outside a restart
	runStart := map[string]time.Time{}
	slices.SortFunc(attempts, func(a, b attempt) int { return a.at.Compare(b.at) })
	for _, a := range attempts {
		total++
		if !a.live {
			delete(runStart, a.replica)
			continue
		}
		switch {
		case a.status == http.StatusServiceUnavailable && inPgRestart(a):
			live503Restart++
			if first503.IsZero() {
				first503 = a.at
			}
			last503 = a.end
		case a.status == http.StatusServiceUnavailable:
			live503++
			if len(outside) < 10 {
				outside = append(outside, fmt.Sprintf("%s at %.1fs", a.replica, a.at.Sub(loadStart).Seconds()))
			}
			if _, ok := runStart[a.replica]; !ok {
				runStart[a.replica] = a.at
			}
			worst = max(worst, a.at.Sub(runStart[a.replica]))
		case a.status == 0:
			liveNoAnswer++
		default:
			delete(runStart, a.replica)
		}
	}

	// SLA lateness: when the engine created each alert vs when it was due,
	// and when the first channel had it.
	type lateness struct{ created, delivered []time.Duration }
	late := map[string]*lateness{"sla.warning": {}, "sla.breached": {}}
	rows, err = c.db.Query(ctx, `select id::text, sla_warning_at, sla_warning_sent_at, sla_response_deadline, sla_breached_at
		from conversations where quality = 'hot'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var warnAt, deadline time.Time
		var warned, breached *time.Time
		if err := rows.Scan(&id, &warnAt, &warned, &deadline, &breached); err != nil {
			t.Fatal(err)
		}
		for kind, due := range map[string]time.Time{"sla.warning": warnAt, "sla.breached": deadline} {
			sent := warned
			if kind == "sla.breached" {
				sent = breached
			}
			if sent == nil {
				continue
			}
			late[kind].created = append(late[kind].created, sent.Sub(due))
			first := time.Time{}
			for _, ch := range []string{"slack", "telegram", "email"} {
				if at, ok := received[delivery{ch, id, kind}]; ok && (first.IsZero() || at.Before(first)) {
					first = at
				}
			}
			if !first.IsZero() {
				late[kind].delivered = append(late[kind].delivered, first.Sub(due))
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n=== leadrelay chaos report ===\n")
	fmt.Fprintf(&b, "run: %d replicas, load %s at %d leads/s, SLA lease %s, HOT window %s, retries %s\n",
		replicas, c.cfg.duration, c.cfg.rate, slaLease, c.cfg.hotWindow, retryDelays)
	fmt.Fprintf(&b, "timeline:\n")
	c.mu.Lock()
	for _, l := range c.timeline {
		fmt.Fprintf(&b, "  %s\n", l)
	}
	c.mu.Unlock()
	fmt.Fprintf(&b, "leads: %d acknowledged, %d of them saved (%d lost); %d in the database; %d never acknowledged after 30s of retries\n",
		len(ids), saved, len(ids)-saved, savedTotal, unacked)
	fmt.Fprintf(&b, "deliveries (channel: expected, delivered, missing, duplicated, unexpected):\n")
	var dupTotal, missingTotal int
	for _, ch := range []string{"slack", "telegram", "email"} {
		f := figures[ch]
		fmt.Fprintf(&b, "  %-8s %6d %6d %4d %4d %4d\n", ch, f.expected, f.delivered, f.missing, f.duplicated, f.extra)
		dupTotal += f.duplicated
		missingTotal += f.missing
	}
	meanPerKill := 0.0
	if kills > 0 {
		meanPerKill = float64(dupTotal) / float64(kills)
	}
	fmt.Fprintf(&b, "duplicates: %d over %d SIGKILLs = %.1f per kill, each kill's %v (bound: the sends in flight, NOTIFY_CONCURRENCY %d per channel, %d per replica); by the fault they followed: %v\n",
		dupTotal, kills, meanPerKill, killCounts, concurrency, 3*concurrency, repeatsAfter)
	fmt.Fprintf(&b, "intake: %d requests; from live replicas: %d 503s outside the Postgres restart (longest run %s), %d during it (over %s, asked to answered), %d unanswered\n",
		total, live503, worst.Round(time.Millisecond), live503Restart, last503.Sub(first503).Round(time.Millisecond), liveNoAnswer)
	var token int64
	if err := c.db.QueryRow(ctx, "select token from leader_leases where name = 'sla'").Scan(&token); err != nil {
		t.Error(err)
	}
	fmt.Fprintf(&b, "drain: the last HOT lead's deadline passed and everything was delivered %s after the load ended (see the timeline for the outbox alone)\n", drained.Sub(loadEnd).Round(time.Millisecond))
	fmt.Fprintf(&b, "SLA leadership: %d holders in turn (lease token %d)\n", token, token)
	for _, kind := range []string{"sla.warning", "sla.breached"} {
		l := late[kind]
		fmt.Fprintf(&b, "SLA %s: %d alerts; created late by p50 %s, p99 %s, max %s; first channel had it late by p50 %s, p99 %s, max %s\n",
			strings.TrimPrefix(kind, "sla."), len(l.created), pct(l.created, 50), pct(l.created, 99), pct(l.created, 100),
			pct(l.delivered, 50), pct(l.delivered, 99), pct(l.delivered, 100))
	}
	fmt.Fprintf(&b, "logs: %s\n", c.dir)
	fmt.Print(b.String())
	if err := os.WriteFile(filepath.Join(c.dir, "report.txt"), []byte(b.String()), 0o644); err != nil {
		t.Error(err)
	}

	// The promises.
	if lost := len(ids) - saved; lost != 0 {
		t.Errorf("LOST: %d acknowledged leads are not in the database", lost)
	}
	if missingTotal != 0 {
		t.Errorf("MISSING: %d deliveries never arrived", missingTotal)
	}
	bound := 2*slaLease + time.Second // two leases, plus a tick
	for kind, l := range late {
		if m := pct(l.created, 100); m > bound {
			t.Errorf("LATE: an %s alert was created %s after its time (bound: two leases and a tick, %s)", kind, m, bound)
		}
	}
	for i, n := range killCounts {
		if n > 3*concurrency {
			t.Errorf("REPEATED: kill %d was followed by %d repeats, more than the %d sends one replica may have in flight", i+1, n, 3*concurrency)
		}
	}
	if n := repeatsAfter["no fault"]; n > 0 {
		t.Errorf("REPEATED: %d deliveries arrived twice with no fault before them", n)
	}
	if live503 > 0 {
		t.Logf("note: %d 503s from live replicas outside the Postgres restart (longest run %s): %s", live503, worst, strings.Join(outside, ", "))
	}
}

// pct is the p-th percentile of ds (100: the maximum).
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s) - 1) * p / 100
	return s[i].Round(time.Millisecond)
}

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// chromiumPath finds Chromium: CHROMIUM, else chromium or chromium-browser on PATH, else
// Debian's /usr/bin/chromium. Without it the browser test skips, loudly, except in CI
// (CI set), where it fails: .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set and Chromium is not installed: .ci/run must install Debian's chromium")
	}
	t.Log("!!! SKIPPING THE BROWSER TEST: Chromium is not installed (apt-get install chromium, or set CHROMIUM) !!!")
	t.Skip("Chromium is not installed")
	return ""
}

// windowSize is the browser's window: LEADRELAY_BROWSER_SIZE (e.g. 390x844, a phone), else
// a laptop's 1280x1000.
func windowSize() (int, int) {
	var w, h int
	if _, err := fmt.Sscanf(os.Getenv("LEADRELAY_BROWSER_SIZE"), "%dx%d", &w, &h); err == nil && w > 0 && h > 0 {
		return w, h
	}
	return 1280, 1000
}

// newBrowser starts a headless Chromium for the test, closed when it ends. The whole
// browser session has the given deadline.
func newBrowser(t *testing.T, deadline time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(windowSize()),
		// No user data directory of the test's: chromedp makes a fresh one per browser and,
		// when the browser is cancelled, kills Chromium's leftover children (the network
		// service, the zygote, crashpad) and removes it, trying again while they still
		// write. A t.TempDir was removed by the testing package as soon as the main process
		// had exited, and at load a child still writing in it failed the test ("unlinkat
		// .../Default: directory not empty").
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	// A script error on a page fails the test: the pages must work as written.
	if err := chromedp.Listen(browserCtx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			t.Errorf("script error on the page: %s %s", e.ExceptionDetails.Text, describeException(e))
		}
	}); err != nil {
		t.Fatal(err)
	}
	return browserCtx
}

func describeException(e *runtime.EventExceptionThrown) string {
	if e.ExceptionDetails.Exception != nil {
		return e.ExceptionDetails.Exception.Description
	}
	return ""
}

// step runs browser actions, each wait bounded by the step's deadline, and names the step
// when it fails. With LEADRELAY_SCREENSHOTS set to a directory, it saves a screenshot of
// the page after the step.
func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := doRetryingStaleNodes(stepCtx, actions); err != nil {
		if dir := os.Getenv("LEADRELAY_SCREENSHOTS"); dir != "" {
			shotCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if png, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(100)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, "FAILED_"+strings.ReplaceAll(name, " ", "_")+".png"), png, 0o644)
			}
		}
		htmlCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		html, _ := chromedp.Run(htmlCtx, chromedp.OuterHTML(chromedp.CSS("body")))
		if i := strings.Index(html, "<h2>Deliveries"); i > 0 {
			html = html[i:]
		}
		t.Fatalf("%s: %v\npage:\n%.4000s", name, err, html)
	}
	if dir := os.Getenv("LEADRELAY_SCREENSHOTS"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".png")
			_ = os.WriteFile(file, png, 0o644)
		}
	}
}

// doRetryingStaleNodes runs the actions in order; an action that failed because a live
// refresh replaced its node between the query and the click is tried again (within ctx).
func doRetryingStaleNodes(ctx context.Context, actions []chromedp.Action[chromedp.Void]) error {
	for _, a := range actions {
		for {
			err := chromedp.Do(ctx, a)
			if err == nil {
				break
			}
			if ctx.Err() != nil || !strings.Contains(err.Error(), "Could not find node") {
				return err
			}
		}
	}
	return nil
}

// signIn signs in to the console at base with the admin key and waits on the leads list
// until its event stream is open (so a lead posted next is announced to it); the page is
// marked (window.__notReloaded) so a test can tell it was never reloaded.
func signIn(t *testing.T, browser context.Context, base, key string) {
	t.Helper()
	step(t, browser, "sign in",
		chromedp.Navigate(base+"/admin"),
		chromedp.WaitVisible(chromedp.ID("#key")),
		chromedp.SendKeys(chromedp.ID("key"), key),
		chromedp.Submit(chromedp.ID("#key")),
		chromedp.WaitVisible(chromedp.ID("#lead-list")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-stream="open"]`)),
		chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`),
	)
}

// The console in a real browser, against the real program: sign in, watch a lead posted
// through the intake appear without a reload, open it, mark it contacted and see the SLA
// banner clear, reply, schedule and complete a follow-up, replay a failed delivery, sign out.
func TestConsoleInABrowser(t *testing.T) {
	t.Parallel()
	started := time.Now()
	browser := newBrowser(t, 3*time.Minute)
	url := dbtest.NewURL(t)
	db := testkit.Connect(t, url)
	slack := notifierstest.NewSlack(t)
	slack.Down(notifierstest.Answer{Status: http.StatusGone, Body: "channel_is_archived"})
	const adminKey = "browser-test-admin-key-0123456789"
	base, _ := startServeEnv(t, map[string]string{
		"DATABASE_URL":          url,
		"ADMIN_API_KEY":         adminKey,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"NOTIFY_SWEEP_INTERVAL": "200ms",
		"RATE_LIMIT_PER_MINUTE": "1000",
	})

	signIn(t, browser, base, adminKey)

	lead := postLead(t, base, "Browser Lead")
	row := fmt.Sprintf(`tr.lead-row[data-lead="%s"]`, lead)
	var stillSamePage bool
	step(t, browser, "the new lead appears without a reload",
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			stillSamePage, err = chromedp.Evaluate[bool](`window.__notReloaded === true`)(ctx, tg)
			return err
		}),
	)
	if !stillSamePage {
		t.Fatal("the page reloaded: the lead must appear live")
	}

	// Its deadline passes (time moved in SQL): the SLA engine breaches it and the banner,
	// live, shows it.
	if _, err := db.Exec(context.Background(), `update conversations
		set created_at = now() - interval '20 minutes', sla_warning_at = now() - interval '10 minutes',
		    sla_response_deadline = now() - interval '5 minutes'
		where id = $1`, lead); err != nil {
		t.Fatal(err)
	}
	alert := fmt.Sprintf(`#banner li.alert[data-lead="%s"]`, lead)
	step(t, browser, "the banner shows the breached lead",
		chromedp.WaitVisible(chromedp.CSS(alert+".breached")),
	)

	// The SLA engine has declared the breach (before the lead is answered, so its alert
	// goes out, and fails, as the lead's did).
	var event, breachEvent string
	testkit.WaitFor(t, wait, "the SLA engine's breach event", func() (bool, error) {
		var breach *string
		err := db.QueryRow(context.Background(), `select (select id::text from lead_events where conversation_id = $1 and event_type = 'lead.created'),
			(select id::text from lead_events where conversation_id = $1 and event_type = 'sla.breached')`, lead).Scan(&event, &breach)
		if breach != nil {
			breachEvent = *breach
		}
		return breach != nil, err
	})

	step(t, browser, "open the lead",
		chromedp.Click(chromedp.CSS(row+" a")),
		chromedp.WaitVisible(chromedp.ID("#mark-contacted")),
	)
	// The browser's tick writes the countdown as the server and the timeline write
	// durations ("breached 5 min 12 s ago"), not in a style of its own. The server wrote no
	// "breached" there, so only the tick can make the text match.
	step(t, browser, "the countdown ticks in the timeline's words",
		chromedp.Evaluate[chromedp.Void](`document.querySelector(".sla-line .countdown").textContent = ""`),
		chromedp.Poll[chromedp.Void](`/^breached \d+ min( \d+ s)? ago$/.test(document.querySelector(".sla-line .countdown").textContent)`,
			chromedp.WithPollingMutation()),
	)
	// Longer durations, each some seconds past a whole minute, so their words (no seconds
	// past an hour) hold while the test runs: the tick writes what public.duration_text
	// writes for them.
	spans := []int{3910, 7210, 109810, 259810} // 1 h 5 min, 2 h, 1 day 6 h, 3 days; +10 s each
	var written []string
	step(t, browser, "the tick writes hours and days in the timeline's words",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(function (spans) {
			var box = document.createElement("div");
			box.id = "span-check";
			spans.forEach(function (s) {
				var el = document.createElement("time");
				el.setAttribute("data-ago", new Date(Date.now() - s * 1000).toISOString());
				box.appendChild(el);
			});
			document.body.appendChild(box);
		})(%s)`, strings.Join(strings.Fields(fmt.Sprint(spans)), ","))),
		chromedp.Poll[chromedp.Void](`Array.from(document.querySelectorAll("#span-check time")).every(function (el) { return el.textContent !== ""; })`,
			chromedp.WithPollingMutation()),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			written, err = chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#span-check time")).map(function (el) { return el.textContent; })`)(ctx, tg)
			return err
		}),
	)
	for i, secs := range spans {
		var want string
		if err := db.QueryRow(context.Background(), "select public.duration_text(make_interval(secs => $1))", secs).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if i >= len(written) || written[i] != want+" ago" {
			t.Errorf("the tick wrote %q for %d s; want %q", written, secs, want+" ago")
		}
	}
	step(t, browser, "mark it contacted and the banner clears",
		chromedp.Click(chromedp.ID("#mark-contacted")),
		chromedp.WaitVisible(chromedp.CSS("#banner section.banner.clear")),
		chromedp.WaitNotPresent(chromedp.CSS(alert)),
		chromedp.WaitVisible(`//span[@id="lead-status"][text()="contacted"]`),
	)

	step(t, browser, "reply to the customer",
		chromedp.SendKeys(chromedp.ID("reply-body"), "Hello from the console: the villa is available."),
		chromedp.Click(chromedp.ID("#send-reply")),
		chromedp.WaitVisible(`//ol[contains(@class,"transcript")]//p[contains(., "the villa is available")]`),
		chromedp.WaitVisible(`//ol[@id="timeline"]//strong[text()="Agent replied"]`),
	)

	when := time.Now().UTC().Add(48 * time.Hour).Format("2006-01-02T15:04")
	step(t, browser, "schedule a follow-up",
		chromedp.SetValue(chromedp.ID("followup-date"), when),
		chromedp.SendKeys(chromedp.ID("followup-notes"), "Call about the viewing"),
		chromedp.Click(chromedp.ID("#schedule-followup")),
		chromedp.WaitVisible(chromedp.CSS(`li.followup.f-scheduled button.complete-followup`)),
	)
	step(t, browser, "complete the follow-up",
		chromedp.Click(chromedp.CSS(`li.followup.f-scheduled button.complete-followup`)),
		chromedp.WaitVisible(chromedp.CSS(`li.followup.f-completed`)),
		chromedp.WaitVisible(`//ol[@id="timeline"]//strong[text()="Follow-up completed"]`),
	)

	// Slack refused the lead's alert for good (410): the page shows the failed delivery,
	// live. Slack recovers; the admin replays it and sees it sent.
	// (The breach's alert fails too; both rows are there before the click, so no live
	// refresh replaces the button under the pointer.)

	delivery := fmt.Sprintf(`tr.delivery[data-event="%s"][data-channel="slack"]`, event)
	step(t, browser, "the failed delivery shows",
		chromedp.WaitVisible(chromedp.CSS(delivery+".d-failed button.replay")),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr.delivery.d-failed[data-event="%s"]`, breachEvent))),
	)
	slack.Recover()
	t.Cleanup(func() {
		if t.Failed() {
			rows, _ := db.Query(context.Background(), `select l.channel::text, e.event_type::text, l.status::text, l.attempts, coalesce(l.last_error, '')
				from notification_logs l join lead_events e on e.id = l.lead_event_id where l.conversation_id = $1`, lead)
			for rows.Next() {
				var ch, ev, st, le string
				var n int
				_ = rows.Scan(&ch, &ev, &st, &n, &le)
				t.Logf("delivery %s %s: %s after %d attempts %s", ev, ch, st, n, le)
			}
		}
	})
	step(t, browser, "replay the failed delivery",
		chromedp.Click(chromedp.CSS(delivery+".d-failed button.replay")),
		chromedp.WaitVisible(chromedp.CSS(delivery+".d-sent")),
	)
	msgs := slack.WaitFor(t, 1, wait)
	if !strings.Contains(string(msgs[0].Body), "Browser Lead") {
		t.Errorf("the replayed Slack message does not name the lead: %s", msgs[0].Body)
	}

	step(t, browser, "the deliveries page lists the breach alert that still fails",
		chromedp.Navigate(base+"/admin/deliveries"),
		chromedp.WaitVisible(chromedp.CSS(`tr.delivery.d-failed button.replay`)),
	)
	step(t, browser, "the SLA report draws its chart",
		chromedp.Navigate(base+"/admin/report"),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart rect.breached`)),
	)

	step(t, browser, "sign out",
		chromedp.Click(chromedp.ID("#sign-out")),
		chromedp.WaitVisible(chromedp.ID("#key")),
		chromedp.Navigate(base+"/admin/leads"),
		chromedp.WaitVisible(chromedp.ID("#key")),
	)

	// Every action is on the timeline, by the admin key.
	var byKey int
	if err := db.QueryRow(context.Background(), `select count(*) from conversation_timeline
		where conversation_id = $1 and actor_id = 'admin key'`, lead).Scan(&byKey); err != nil {
		t.Fatal(err)
	}
	if byKey < 5 { // status, first response, follow-up scheduled and completed, replay
		t.Errorf("%d timeline entries name the admin key; want at least 5", byKey)
	}
	t.Logf("browser test ran in %s", time.Since(started).Round(time.Millisecond))
}

// An admin is told when the page stops following the leads: with the replica's link to the
// database cut, the console's notice says its live updates are paused and why; once the link
// heals, the notice goes and a lead posted then appears without a reload.
func TestTheConsoleSaysWhenItsLiveUpdatesPause(t *testing.T) {
	t.Parallel()
	browser := newBrowser(t, 2*time.Minute)
	link := testkit.NewProxy(t, dbtest.NewURL(t))
	slack := notifierstest.NewSlack(t)
	const adminKey = "browser-test-admin-key-0123456789"
	base, _ := startServeEnv(t, map[string]string{
		"DATABASE_URL":          link.URL,
		"ADMIN_API_KEY":         adminKey,
		"SLACK_WEBHOOK_URL":     slack.URL,
		"RATE_LIMIT_PER_MINUTE": "1000",
	})
	signIn(t, browser, base, adminKey)
	step(t, browser, "no notice while the live updates work",
		chromedp.WaitNotVisible(chromedp.ID("#live-status")),
	)

	link.Cut()
	step(t, browser, "the page says its live updates are paused, and why",
		chromedp.WaitVisible(chromedp.CSS(`body[data-stream="paused"] #live-status`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("live-status").textContent.indexOf(
			"Live updates paused: this replica has lost its connection to the database.") === 0`),
	)

	link.Heal()
	step(t, browser, "the notice goes once the replica hears the database again",
		chromedp.WaitVisible(chromedp.CSS(`body[data-stream="open"]`)),
		chromedp.WaitNotVisible(chromedp.ID("#live-status")),
	)
	lead := postLead(t, base, "After The Cut")
	var stillSamePage bool
	step(t, browser, "a lead posted then appears without a reload",
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr.lead-row[data-lead="%s"]`, lead))),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
			stillSamePage, err = chromedp.Evaluate[bool](`window.__notReloaded === true`)(ctx, tg)
			return err
		}),
	)
	if !stillSamePage {
		t.Fatal("the page reloaded: the lead must appear live")
	}
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// A rolling deploy stops a machine with SIGTERM. A delivery in flight then
// finishes and its outcome is recorded before the process exits 0: nothing
// is left leased for another replica to send again, nothing is lost.
func TestSIGTERMMidDeliveryLosesNoOutcome(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	slack := notifierstest.NewSlack(t)
	hold := make(chan struct{})
	slack.Refuse(notifierstest.Answer{Hold: hold})

	var logs testkit.Buffer
	cmd := exec.Command(os.Args[0], "serve") // TestMain runs main
	cmd.Env = []string{
		"LEADRELAY_RUN_MAIN=1",
		"DATABASE_URL=" + url,
		fmt.Sprintf("PORT=%d", freePort(t)),
		"SLACK_WEBHOOK_URL=" + slack.URL,
		"NOTIFY_SEND_TIMEOUT=60s", "NOTIFY_LEASE=2m", // a send this long needs a lease longer than it
	}
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() { exitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	conn := testkit.Connect(t, url)
	var lead string
	if err := conn.QueryRow(context.Background(), `insert into conversations (form, name, email) values ('contact_form', 'Mid Flight', 'mid@example.com') returning id`).Scan(&lead); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "the Slack send to be in flight", testkit.Until(func() bool { return slack.Requests() >= 1 }))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "serve to begin shutting down", testkit.Until(func() bool {
		return strings.Contains(logs.String(), "shutting down")
	}))
	close(hold) // Slack answers only now, while the process is stopping

	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0\n%s", exitErr, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not exit within 60s of SIGTERM\n%s", logs.String())
	}

	var status string
	var attempts int
	var leased bool
	if err := conn.QueryRow(context.Background(), `select l.status::text, l.attempts, l.lease_owner is not null
		from notification_logs l join lead_events e on e.id = l.lead_event_id
		where e.conversation_id = $1::uuid and e.event_type = 'lead.created' and l.channel = 'slack'`, lead).Scan(&status, &attempts, &leased); err != nil {
		t.Fatalf("the delivery's row: %v\n%s", err, logs.String())
	}
	if status != "sent" || attempts != 1 || leased {
		t.Errorf("after SIGTERM mid-send the delivery is %s after %d attempt(s), leased: %v; want sent, 1, not leased\n%s", status, attempts, leased, logs.String())
	}
	if n := len(slack.Messages()); n != 1 {
		t.Errorf("Slack got %d messages, want 1", n)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

func TestStatusReportsThePipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	conn := testkit.Connect(t, url)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	now := time.Now()
	// Two leads, each with its lead.created event waiting, one of them an
	// hour old; the older lead's deadline passed today and the engine
	// declared it breached; its Slack delivery failed ten minutes ago, an
	// email delivery two hours ago.
	exec(`insert into conversations (form, name, email, created_at) values
		('contact_form', 'Old', 'old@example.com', $1::timestamptz - interval '25 hours'),
		('contact_form', 'New', 'new@example.com', $1::timestamptz)`, now)
	exec(`update lead_events set created_at = $1::timestamptz - interval '1 hour'
		where conversation_id = (select id from conversations where name = 'Old')`, now)
	exec(`update conversations set sla_response_deadline = greatest(date_trunc('day', $1::timestamptz, 'UTC'), $1::timestamptz - interval '1 minute')
		where name = 'Old'`, now)
	exec(`select public.sla_tick($1::timestamptz, 500)`, now)
	exec(`insert into notification_logs (lead_event_id, conversation_id, channel, status, updated_at)
		select id, conversation_id, 'slack', 'failed', $1::timestamptz - interval '10 minutes' from lead_events where event_type = 'lead.created' limit 1`, now)
	exec(`insert into notification_logs (lead_event_id, conversation_id, channel, status, updated_at)
		select id, conversation_id, 'email', 'failed', $1::timestamptz - interval '2 hours' from lead_events where event_type = 'lead.created' limit 1`, now)
	exec(`select * from public.leader_lease_acquire('sla', 'replica-a', interval '1 hour')`)

	var out bytes.Buffer
	if err := run(ctx, []string{"leadrelay", "status", "--json"}, env(map[string]string{"DATABASE_URL": url}), &out, &out); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out.String())
	}
	var st pipelineStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status --json printed no JSON: %v\n%s", err, out.String())
	}
	if st.Outbox.EventsWaiting < 2 || st.Outbox.AtLeast {
		t.Errorf("events waiting = %d (at least: %v), want the two leads' events and more", st.Outbox.EventsWaiting, st.Outbox.AtLeast)
	}
	if age := st.Outbox.OldestAgeSeconds; age < 3500 || age > 3700+time.Since(now).Seconds() {
		t.Errorf("oldest waiting age = %vs, want about an hour", age)
	}
	if got := st.FailedLastHour; len(got) != 1 || got["slack"] != 1 {
		t.Errorf("failed in the last hour = %v, want slack 1 (the email failure is two hours old)", got)
	}
	if l := st.SLALeader; l.Replica == nil || *l.Replica != "replica-a" || !l.Held || l.Token < 1 {
		t.Errorf("SLA leader = %+v, want replica-a holding the lease", l)
	}
	if st.BreachedToday != 1 {
		t.Errorf("leads breached today = %d, want 1", st.BreachedToday)
	}

	out.Reset()
	if err := run(ctx, []string{"leadrelay", "status"}, env(map[string]string{"DATABASE_URL": url}), &out, &out); err != nil {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	wantAll(t, "status", out.String(),
		"event(s) waiting; the oldest since ",
		"failed deliveries in the last hour: slack 1 (`leadrelay replay --failed` sends them again)",
		"SLA leader: replica-a (token ",
		"leads breached today (UTC): 1",
	)
}

// The delivering replicas seen within the window, with their channels and
// which channel some of them lack; none at all says that alerts wait.
func TestStatusShowsTheDeliveringReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.NewURL(t)
	conn := testkit.Connect(t, url)
	status := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, append([]string{"leadrelay", "status"}, args...), env(map[string]string{"DATABASE_URL": url}), &out, &out); err != nil {
			t.Fatalf("status %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}

	if out := status(); !strings.Contains(out, "delivering replicas: none seen in the last 1m0s: alerts wait in the outbox until one runs\n") {
		t.Errorf("status with no replica announced does not say alerts wait:\n%s", out)
	}

	// vm-1 has every channel configured here, vm-2 lacks Telegram, and
	// vm-gone was last seen two minutes ago: no longer live.
	now := time.Now()
	for _, a := range []struct {
		replica, channels string
		ago               time.Duration
	}{
		{"vm-1", "{slack,email,telegram}", 2 * time.Second},
		{"vm-2", "{slack,email}", 4 * time.Second},
		{"vm-gone", "{slack,email,telegram,sms}", 2 * time.Minute},
	} {
		if _, err := conn.Exec(ctx, `select public.announce_replica($1, $2::notification_channel[], $3::timestamptz)`,
			a.replica, a.channels, now.Add(-a.ago)); err != nil {
			t.Fatalf("announce %s: %v", a.replica, err)
		}
	}

	var st pipelineStatus
	if out := status("--json"); json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json printed no JSON:\n%s", out)
	}
	r := st.Replicas
	if r.WindowSeconds != 60 || len(r.Live) != 2 || r.AtLeast {
		t.Fatalf("delivering replicas = %+v, want vm-1 and vm-2 within a 60 s window", r)
	}
	for i, want := range []struct {
		name, channels string
		ago            time.Duration
	}{{"vm-1", "slack email telegram", 2 * time.Second}, {"vm-2", "slack email", 4 * time.Second}} {
		got := r.Live[i]
		if got.Name != want.name || strings.Join(got.Channels, " ") != want.channels {
			t.Errorf("replica %d = %s with %v, want %s with %s", i, got.Name, got.Channels, want.name, want.channels)
		}
		if got.SeenAgoSeconds < want.ago.Seconds() || got.SeenAgoSeconds > (want.ago+time.Since(now)).Seconds() {
			t.Errorf("%s seen %v s ago, want %v", got.Name, got.SeenAgoSeconds, want.ago)
		}
	}
	if len(r.Differ) != 1 || r.Differ[0].Channel != "telegram" || strings.Join(r.Differ[0].Lacking, " ") != "vm-2" || strings.Join(r.Differ[0].Having, " ") != "vm-1" {
		t.Errorf("replicas differ = %+v, want vm-2 lacking telegram, which vm-1 has", r.Differ)
	}

	out := status()
	wantAll(t, "status", out,
		"delivering replicas (seen in the last 1m0s): 2\n  vm-1: slack, email, telegram (seen ",
		"\n  vm-2: slack, email (seen ",
		"\nreplicas differ: vm-2 lacks telegram: telegram alerts wait for vm-1\n",
	)
	if strings.Contains(out, "vm-gone") {
		t.Errorf("status shows a replica not seen for two minutes:\n%s", out)
	}
}

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
	for _, want := range []string{
		"event(s) waiting; the oldest since ",
		"failed deliveries in the last hour: slack 1 (`leadrelay replay --failed` sends them again)",
		"SLA leader: replica-a (token ",
		"leads breached today (UTC): 1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}

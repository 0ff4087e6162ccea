package sla_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/sla"
)

func TestAlertsListOpenUnansweredLeadsSoonestDeadlineFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hot := b.lead(t, "hot")   // warned t0+7m30s, due t0+15m
	warm := b.lead(t, "warm") // warned t0+30m, due t0+1h
	b.lead(t, "cold")         // warned t0+23h30m
	answered := b.lead(t, "hot")
	closed := b.lead(t, "hot")
	exec(t, b.db, "insert into chat_messages (conversation_id, sender_type, content, sent_at) values ($1, 'agent', 'Hi', $2)", answered, t0.Add(time.Minute))
	exec(t, b.db, "update conversations set status = 'closed' where id = $1", closed)

	alerts, err := sla.Alerts(testkit.Context(t), b.db, t0.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 0 {
		t.Fatalf("before any warning time: %+v", alerts)
	}

	b.at(t, 40*time.Minute) // the engine breaches the HOT lead and warns the WARM one
	alerts, err = sla.Alerts(testkit.Context(t), b.db, t0.Add(40*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 2 || alerts[0].ConversationID != hot || alerts[1].ConversationID != warm {
		t.Fatalf("alerts %+v, want the HOT lead then the WARM one", alerts)
	}
	h, w := alerts[0], alerts[1]
	if !h.Breached || h.SecondsLeft != -25*60 || h.Quality != "hot" || h.SLABreachedAt == nil || !h.SLAResponseDeadline.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("the breached HOT lead: %+v", h)
	}
	if w.Breached || w.SecondsLeft != 20*60 || w.SLAWarningSentAt == nil || w.SLABreachedAt != nil || w.Email == nil || *w.Email != "lead@example.com" {
		t.Errorf("the approaching WARM lead: %+v", w)
	}
	body, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"conversation_id":`, `"seconds_left":-1500`, `"breached":true`, `"sla_response_deadline":`} {
		if !strings.Contains(string(body), key) {
			t.Errorf("JSON %s lacks %s", body, key)
		}
	}
}

func TestSummaryCountsThePeriodPerQualityAndSource(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := func(quality, source string, at time.Time) string {
		var id string
		if err := b.db.QueryRow(testkit.Context(t), `insert into conversations (form, email, quality, source, created_at)
			values ('chatbot', 's@example.com', $1, $2, $3) returning id`, quality, source, at).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	answer := func(id string, after time.Duration) {
		exec(t, b.db, "insert into chat_messages (conversation_id, sender_type, content, sent_at) values ($1, 'agent', 'Hello', $2)", id, t0.Add(after))
	}
	// HOT from the website, due in 15 min: four answered in time, one late.
	for _, after := range []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute} {
		answer(lead("hot", "website", t0), after)
	}
	// WARM from Facebook, due in 1 h: one answered in time, one never (the engine breaches it).
	answer(lead("warm", "facebook", t0), 10*time.Minute)
	lead("warm", "facebook", t0)
	// Not counted: spam, and a lead from before the period.
	spam := lead("hot", "website", t0)
	exec(t, b.db, "update conversations set status = 'spam' where id = $1", spam)
	lead("hot", "website", t0.Add(-time.Hour))
	b.at(t, 2*time.Hour)

	rows, err := sla.Summary(testkit.Context(t), b.db, t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	f := func(v float64) *float64 { return &v }
	want := []sla.SummaryRow{
		{Quality: "hot", Source: "website", Leads: 5, Answered: 5, AnsweredInTime: 4, Breached: 1,
			MedianFirstResponseSeconds: f(300), P90FirstResponseSeconds: f(960)},
		{Quality: "warm", Source: "facebook", Leads: 2, Answered: 1, AnsweredInTime: 1, Breached: 1,
			MedianFirstResponseSeconds: f(600), P90FirstResponseSeconds: f(600)},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
	for i := range want {
		if !sameRow(rows[i], want[i]) {
			t.Errorf("row %d: %+v, want %+v", i, show(rows[i]), show(want[i]))
		}
	}

	if _, err := sla.Summary(testkit.Context(t), b.db, t0, t0); !errors.Is(err, sla.ErrPeriod) {
		t.Errorf("an empty period: %v, want ErrPeriod", err)
	}
}

func sameRow(a, b sla.SummaryRow) bool {
	eq := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Quality == b.Quality && a.Source == b.Source && a.Leads == b.Leads && a.Answered == b.Answered &&
		a.AnsweredInTime == b.AnsweredInTime && a.Breached == b.Breached &&
		eq(a.MedianFirstResponseSeconds, b.MedianFirstResponseSeconds) && eq(a.P90FirstResponseSeconds, b.P90FirstResponseSeconds)
}

func show(r sla.SummaryRow) string {
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Sprintf("%+v (%v)", r, err)
	}
	return string(body)
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"SLA_TICK_INTERVAL": "500ms", "SLA_FOLLOWUP_INTERVAL": "2s", "SLA_LEADER_LEASE": "10s", "SLA_BATCH_SIZE": "50"}
	c, err := sla.ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := sla.Config{TickInterval: 500 * time.Millisecond, FollowUpInterval: 2 * time.Second, Lease: 10 * time.Second, BatchSize: 50}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if c, err := sla.ConfigFromEnv(func(string) string { return "" }); err != nil || c != (sla.Config{}) {
		t.Fatalf("with nothing set: %+v, %v; want the zero Config (the defaults)", c, err)
	}
}

func TestConfigFromEnvNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"SLA_TICK_INTERVAL": "soon", "SLA_FOLLOWUP_INTERVAL": "-1s", "SLA_LEADER_LEASE": "100ms", "SLA_BATCH_SIZE": "0"}
	_, err := sla.ConfigFromEnv(func(k string) string { return vars[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for name := range vars {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// New refuses, by name, what an Engine cannot run with.
func TestNewRefusesWhatItCannotRunWith(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		cfg     sla.Config
		mention string
	}{
		"no replica":        {sla.Config{}, "Replica"},
		"a lease too short": {sla.Config{Replica: "a", Lease: time.Millisecond}, "SLA_LEADER_LEASE"},
		"a batch too large": {sla.Config{Replica: "a", BatchSize: 10001}, "SLA_BATCH_SIZE"},
		"a tick too often":  {sla.Config{Replica: "a", TickInterval: time.Microsecond}, "SLA_TICK_INTERVAL"},
	} {
		if _, err := sla.New(nil, c.cfg, nil, quiet()); err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.mention)
		}
	}
}

package sla_test

import (
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/sla"
)

// The issue's own scenario: with a one-minute window a lead is warned at
// 30 s (halfway, as the window is shorter than the 30 min warning) and
// breached at 60 s, each once, and the timeline tells it.
func TestOneMinuteWindowWarnsAtHalfAndBreachesAtDeadlineOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	exec(t, b.db, "update sla_policies set response_window = interval '1 minute' where quality = 'hot'")
	lead := b.lead(t, "hot")

	if res := b.at(t, 29*time.Second+999*time.Millisecond); res != (sla.Result{}) {
		t.Fatalf("before the warning time: %+v", res)
	}
	if res := b.at(t, 30*time.Second); res != (sla.Result{Warnings: 1}) {
		t.Fatalf("at the warning time: %+v, want one warning", res)
	}
	for _, d := range []time.Duration{30 * time.Second, 45 * time.Second, 59 * time.Second} {
		if res := b.at(t, d); res != (sla.Result{}) {
			t.Fatalf("at t0+%s, between warning and deadline: %+v", d, res)
		}
	}
	if res := b.at(t, time.Minute); res != (sla.Result{Breaches: 1}) {
		t.Fatalf("at the deadline: %+v, want one breach", res)
	}
	for _, d := range []time.Duration{time.Minute, 2 * time.Minute, 48 * time.Hour} {
		if res := b.at(t, d); res != (sla.Result{}) {
			t.Fatalf("at t0+%s, after the breach: %+v", d, res)
		}
	}

	if got, want := b.events(t, lead), []string{"sla.warning", "sla.breached"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	want := []entry{{"SLA deadline approaching", t0.Add(30 * time.Second)}, {"SLA breached", t0.Add(time.Minute)}}
	if got := b.timeline(t, lead); !slices.Equal(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
	// Each event is due at its tick's time, the clock the dispatcher is
	// given too, not at the database's now().
	var warningDue, breachDue time.Time
	if err := b.db.QueryRow(testkit.Context(t), `select
			max(available_at) filter (where event_type = 'sla.warning'),
			max(available_at) filter (where event_type = 'sla.breached')
		from lead_events where conversation_id = $1`, lead).Scan(&warningDue, &breachDue); err != nil {
		t.Fatal(err)
	}
	if !warningDue.Equal(t0.Add(30*time.Second)) || !breachDue.Equal(t0.Add(time.Minute)) {
		t.Errorf("events due at %s and %s, want the ticks' times %s and %s", warningDue, breachDue, t0.Add(30*time.Second), t0.Add(time.Minute))
	}
	f := b.flags(t, lead)
	if !timeIs(f.WarningSentAt, t0.Add(30*time.Second)) || !f.Breached || !timeIs(f.BreachedAt, t0.Add(time.Minute)) {
		t.Errorf("flags %+v, want warned at 30 s and breached at 60 s", f)
	}
	rows, _ := b.db.Query(testkit.Context(t), "select idempotency_key from lead_events where conversation_id = $1 and event_type::text like 'sla.%' order by 1 desc", lead)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sla.warning:" + lead, "sla.breached:" + lead}; !slices.Equal(keys, want) {
		t.Errorf("idempotency keys %v, want %v", keys, want)
	}
}

func TestDefaultWindowsPerQuality(t *testing.T) {
	t.Parallel()
	b := setup(t)
	hot, warm, cold := b.lead(t, "hot"), b.lead(t, "warm"), b.lead(t, "cold")
	steps := []struct {
		at   time.Duration
		want sla.Result
	}{
		{7*time.Minute + 30*time.Second, sla.Result{Warnings: 1}}, // HOT, halfway through 15 min
		{15 * time.Minute, sla.Result{Breaches: 1}},
		{30 * time.Minute, sla.Result{Warnings: 1}}, // WARM, 30 min before its hour
		{time.Hour, sla.Result{Breaches: 1}},
		{23*time.Hour + 30*time.Minute, sla.Result{Warnings: 1}}, // COLD
		{24 * time.Hour, sla.Result{Breaches: 1}},
	}
	for _, s := range steps {
		if res := b.at(t, s.at-time.Millisecond); res != (sla.Result{}) {
			t.Fatalf("just before t0+%s: %+v", s.at, res)
		}
		if res := b.at(t, s.at); res != s.want {
			t.Fatalf("at t0+%s: %+v, want %+v", s.at, res, s.want)
		}
	}
	for _, id := range []string{hot, warm, cold} {
		if got := b.events(t, id); !slices.Equal(got, []string{"sla.warning", "sla.breached"}) {
			t.Errorf("lead %s: events %v", id, got)
		}
	}
}

func TestAHumanAnswerMeetsTheSLA(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// HOT: warned at 7m30s, due at 15m.
	byAgent := b.lead(t, "hot")
	byStatus := b.lead(t, "hot")
	byBot := b.lead(t, "hot")
	afterWarning := b.lead(t, "hot")
	exec(t, b.db, `insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at)
		values ($1, 'agent', 'agent-1', 'Hello, calling you now', $2), ($3, 'bot', null, 'Thanks, an agent will call', $2)`,
		byAgent, t0.Add(2*time.Minute), byBot)
	exec(t, b.db, "update conversations set status = 'contacted' where id = $1", byStatus)

	b.at(t, 8*time.Minute)
	exec(t, b.db, `insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at)
		values ($1, 'agent', 'agent-2', 'Sorry for the wait', $2)`, afterWarning, t0.Add(9*time.Minute))
	b.at(t, 15*time.Minute)
	b.at(t, 48*time.Hour)

	for _, c := range []struct {
		name string
		id   string
		want []string
	}{
		{"answered by an agent before the warning", byAgent, nil},
		{"marked contacted before the warning", byStatus, nil},
		{"answered only by the bot", byBot, []string{"sla.warning", "sla.breached"}},
		{"answered by an agent after the warning", afterWarning, []string{"sla.warning"}},
	} {
		if got := b.events(t, c.id); !slices.Equal(got, c.want) {
			t.Errorf("%s: events %v, want %v", c.name, got, c.want)
		}
	}
}

func TestARescoredLeadFollowsItsNewDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	up := b.lead(t, "warm")  // due t0+1h, warned t0+30m
	down := b.lead(t, "hot") // due t0+15m, warned t0+7m30s
	b.at(t, 5*time.Minute)
	exec(t, b.db, "update conversations set quality = 'hot' where id = $1", up)    // now due t0+15m
	exec(t, b.db, "update conversations set quality = 'cold' where id = $1", down) // now due t0+24h

	if res := b.at(t, 7*time.Minute+30*time.Second); res != (sla.Result{Warnings: 1}) {
		t.Fatalf("at the re-scored HOT lead's warning: %+v", res)
	}
	if res := b.at(t, 15*time.Minute); res != (sla.Result{Breaches: 1}) {
		t.Fatalf("at the re-scored HOT lead's deadline: %+v", res)
	}
	if got := b.events(t, up); !slices.Equal(got, []string{"sla.warning", "sla.breached"}) {
		t.Errorf("WARM re-scored HOT: events %v", got)
	}
	if got := b.events(t, down); len(got) != 0 {
		t.Errorf("HOT re-scored COLD has events %v at its old deadline", got)
	}
	b.at(t, 23*time.Hour+30*time.Minute)
	b.at(t, 24*time.Hour)
	if got := b.events(t, down); !slices.Equal(got, []string{"sla.warning", "sla.breached"}) {
		t.Errorf("HOT re-scored COLD: events %v at its new deadline", got)
	}
}

func TestClosingOrSpamLeavesTheClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	closed := b.lead(t, "hot")
	spam := b.lead(t, "hot")
	warnedThenClosed := b.lead(t, "hot")
	reopened := b.lead(t, "hot")
	exec(t, b.db, "update conversations set status = 'closed' where id = any($1)", []string{closed, reopened})
	exec(t, b.db, "update conversations set status = 'spam' where id = $1", spam)

	b.at(t, 8*time.Minute)
	exec(t, b.db, "update conversations set status = 'closed' where id = $1", warnedThenClosed)
	b.at(t, 15*time.Minute)
	b.at(t, 48*time.Hour)
	for _, id := range []string{closed, spam} {
		if got := b.events(t, id); len(got) != 0 {
			t.Errorf("a lead closed or marked spam before its warning has events %v", got)
		}
	}
	if got := b.events(t, warnedThenClosed); !slices.Equal(got, []string{"sla.warning"}) {
		t.Errorf("a lead closed after its warning: events %v, want the warning only", got)
	}

	// Reopened, unanswered and past its deadline: breached at once, and
	// not warned after the fact.
	exec(t, b.db, "update conversations set status = 'new' where id = $1", reopened)
	if res := b.at(t, 48*time.Hour+time.Second); res != (sla.Result{Breaches: 1}) {
		t.Fatalf("after reopening: %+v", res)
	}
}

// An engine that was down past a deadline sends the breach, not a warning
// that would arrive after the breach it warns of.
func TestALateTickSendsTheBreachWithoutAStaleWarning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := b.lead(t, "hot")
	if res := b.at(t, 20*time.Minute); res != (sla.Result{Breaches: 1}) {
		t.Fatalf("first tick after the deadline: %+v", res)
	}
	if got := b.events(t, lead); !slices.Equal(got, []string{"sla.breached"}) {
		t.Errorf("events %v, want the breach alone", got)
	}
}

func TestFollowUpsComeDueThenOverdueOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := b.lead(t, "cold")
	exec(t, b.db, "update conversations set status = 'contacted' where id = $1", lead) // no SLA events in the way
	task := func(due, deadline time.Duration, noDeadline bool) string {
		var id string
		var dl *time.Time
		if !noDeadline {
			d := t0.Add(deadline)
			dl = &d
		}
		if err := b.db.QueryRow(testkit.Context(t), `insert into follow_up_tasks (conversation_id, follow_up_date, sla_deadline, notes)
			values ($1, $2, $3, 'Call back about the viewing') returning id`, lead, t0.Add(due), dl).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	open := task(time.Hour, 2*time.Hour, false)
	noDeadline := task(time.Hour, 0, true)
	doneInTime := task(time.Hour, 2*time.Hour, false)
	cancelled := task(time.Hour, 2*time.Hour, false)
	exec(t, b.db, "update follow_up_tasks set status = 'cancelled' where id = $1", cancelled)

	if res := b.at(t, time.Hour-time.Millisecond); res != (sla.Result{}) {
		t.Fatalf("before the follow-up date: %+v", res)
	}
	if res := b.at(t, time.Hour); res != (sla.Result{FollowUpsDue: 3}) {
		t.Fatalf("at the follow-up date: %+v, want 3 due", res)
	}
	if res := b.at(t, 90*time.Minute); res != (sla.Result{}) {
		t.Fatalf("again before the deadline: %+v", res)
	}
	exec(t, b.db, "update follow_up_tasks set status = 'completed' where id = $1", doneInTime)
	if res := b.at(t, 2*time.Hour); res != (sla.Result{FollowUpsOverdue: 1}) {
		t.Fatalf("at the deadline: %+v, want 1 overdue", res)
	}
	if res := b.at(t, 30*24*time.Hour); res != (sla.Result{}) {
		t.Fatalf("long after: %+v", res)
	}

	var status string
	var overdueAt *time.Time
	var breached bool
	if err := b.db.QueryRow(testkit.Context(t), "select status::text, overdue_at, sla_breached from follow_up_tasks where id = $1", open).
		Scan(&status, &overdueAt, &breached); err != nil {
		t.Fatal(err)
	}
	if status != "overdue" || !timeIs(overdueAt, t0.Add(2*time.Hour)) || !breached {
		t.Errorf("the open task: status %s, overdue_at %v, sla_breached %v", status, overdueAt, breached)
	}
	count := func(task, eventType string) int {
		var n int
		if err := b.db.QueryRow(testkit.Context(t), "select count(*) from lead_events where follow_up_task_id = $1 and event_type = $2::lead_event_type", task, eventType).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		name, task   string
		due, overdue int
	}{
		{"open past its deadline", open, 1, 1},
		{"without a deadline", noDeadline, 1, 0},
		{"completed in time", doneInTime, 1, 0},
		{"cancelled", cancelled, 0, 0},
	} {
		if got := count(c.task, "followup.due"); got != c.due {
			t.Errorf("%s: %d followup.due events, want %d", c.name, got, c.due)
		}
		if got := count(c.task, "followup.overdue"); got != c.overdue {
			t.Errorf("%s: %d followup.overdue events, want %d", c.name, got, c.overdue)
		}
	}
	want := []entry{
		{"Follow-up due", t0.Add(time.Hour)}, {"Follow-up due", t0.Add(time.Hour)}, {"Follow-up due", t0.Add(time.Hour)},
		{"Follow-up overdue", t0.Add(2 * time.Hour)},
	}
	if got := b.timeline(t, lead); !slices.Equal(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
}

// A follow-up first seen after its deadline is overdue, not due as well.
func TestALateFollowUpIsOverdueOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lead := b.lead(t, "cold")
	var task string
	if err := b.db.QueryRow(testkit.Context(t), `insert into follow_up_tasks (conversation_id, follow_up_date, sla_deadline)
		values ($1, $2, $3) returning id`, lead, t0.Add(time.Hour), t0.Add(2*time.Hour)).Scan(&task); err != nil {
		t.Fatal(err)
	}
	if res := b.at(t, 3*time.Hour); res.FollowUpsDue != 0 || res.FollowUpsOverdue != 1 {
		t.Fatalf("first tick after the deadline: %+v", res)
	}
}

// One Tick takes everything that is due, however many batches that is.
func TestATickDrainsEveryBatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	engine := newEngine(t, b.db, sla.Config{Replica: "test", BatchSize: 4}, b.clock, quiet())
	exec(t, b.db, `insert into conversations (form, email, quality, created_at)
		select 'contact_form', 'many' || g || '@example.com', 'hot', $1::timestamptz - g * interval '1 second'
		from generate_series(1, 23) g`, t0)
	b.clock.Advance(10 * time.Minute) // every one past its warning, none past its deadline
	res, err := engine.Tick(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if res != (sla.Result{Warnings: 23}) {
		t.Fatalf("got %+v, want 23 warnings", res)
	}
	b.clock.Advance(10 * time.Minute)
	if res, err = engine.Tick(testkit.Context(t)); err != nil || res != (sla.Result{Breaches: 23}) {
		t.Fatalf("got %+v, %v; want 23 breaches", res, err)
	}
}

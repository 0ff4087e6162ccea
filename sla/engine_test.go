package sla_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jonboulle/clockwork"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/sla"
)

func pool(t testing.TB, url string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	return poolVia(t, url, maxConns, nil)
}

// poolVia opens a pool whose connections go through link, when set.
func poolVia(t testing.TB, url string, maxConns int32, link *testkit.Proxy) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	if link != nil {
		cfg.ConnConfig.Host, cfg.ConnConfig.Port = "127.0.0.1", link.Port
		cfg.ConnConfig.Fallbacks = nil
	}
	p, err := pgxpool.NewWithConfig(testkit.Context(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// duplicates counts (lead, follow-up, type) with more than one SLA or
// follow-up event, and timeline entries without exactly one event.
func duplicates(t *testing.T, db *pgxpool.Pool) (events, entries int) {
	t.Helper()
	err := db.QueryRow(testkit.Context(t), `select
		(select count(*) from (
			select 1 from lead_events where event_type <> 'lead.created'
			group by conversation_id, follow_up_task_id, event_type having count(*) > 1) d),
		(select count(*) from conversation_timeline
			where event_type in ('sla_warning', 'sla_breached', 'followup_due', 'followup_overdue'))
		- (select count(*) from lead_events where event_type <> 'lead.created')`).Scan(&events, &entries)
	if err != nil {
		t.Fatal(err)
	}
	return events, entries
}

func countEvents(t *testing.T, db *pgxpool.Pool) sla.Result {
	t.Helper()
	var r sla.Result
	err := db.QueryRow(testkit.Context(t), `select
		count(*) filter (where event_type = 'sla.warning'),
		count(*) filter (where event_type = 'sla.breached'),
		count(*) filter (where event_type = 'followup.due'),
		count(*) filter (where event_type = 'followup.overdue')
		from lead_events`).Scan(&r.Warnings, &r.Breaches, &r.FollowUpsDue, &r.FollowUpsOverdue)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sum(rs ...sla.Result) sla.Result {
	var s sla.Result
	for _, r := range rs {
		s.Warnings += r.Warnings
		s.Breaches += r.Breaches
		s.FollowUpsDue += r.FollowUpsDue
		s.FollowUpsOverdue += r.FollowUpsOverdue
	}
	return s
}

// Eight ticks at once, each on its own connections and in small batches,
// over the same due rows: every alert exists once, and the ticks' own
// counts add up to exactly that (no tick believes it sent what another did).
func TestConcurrentTicksNeverSendTwice(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	db := pool(t, url, 4)
	exec(t, db, `insert into conversations (form, email, quality, created_at)
		select 'contact_form', 'race' || g || '@example.com', 'hot',
		       case when g % 2 = 0 then $1::timestamptz else $1::timestamptz - interval '10 minutes' end
		from generate_series(1, 400) g`, t0)
	exec(t, db, `insert into follow_up_tasks (conversation_id, follow_up_date, sla_deadline)
		select id,
		       case when n % 2 = 0 then $1::timestamptz + interval '5 minutes' else $1::timestamptz - interval '1 hour' end,
		       case when n % 2 = 0 then $1::timestamptz + interval '1 hour' else $1::timestamptz + interval '5 minutes' end
		from (select id, row_number() over (order by id) as n from conversations limit 60) c`, t0)
	// At t0+10m: 200 leads past their warning (t0+7m30s), 200 past their
	// deadline (t0+5m); 30 follow-ups due, 30 overdue.
	want := sla.Result{Warnings: 200, Breaches: 200, FollowUpsDue: 30, FollowUpsOverdue: 30}

	const ticks = 8
	results := make([]sla.Result, ticks)
	errs := make([]error, ticks)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ticks {
		clock := clockwork.NewFakeClockAt(t0.Add(10 * time.Minute))
		// Each batch's deadline is the engine's lease (Engine.batch), and any tick's error
		// fails the test: a minute, not the default 3s, which eight ticks contending for the
		// same rows on a loaded machine can exceed.
		engine := newEngine(t, pool(t, url, 2), sla.Config{Replica: "tick-" + strconv.Itoa(i), BatchSize: 16, Lease: time.Minute}, clock, quiet())
		wg.Go(func() {
			<-start
			results[i], errs[i] = engine.Tick(testkit.Context(t))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	if got := sum(results...); got != want {
		t.Errorf("the ticks reported %+v together, want %+v (per tick: %+v)", got, want, results)
	}
	if got := countEvents(t, db); got != want {
		t.Errorf("events in the outbox: %+v, want %+v", got, want)
	}
	if dup, entries := duplicates(t, db); dup != 0 || entries != 0 {
		t.Errorf("%d alerts sent more than once; %d timeline entries more than events", dup, entries)
	}
	t.Logf("per tick: %+v", results)
}

// Two replicas' engines and an operator's tick, all running at once: one
// engine leads, and every alert is still created once.
func TestTwoEnginesAndAnOperatorTickSendEachAlertOnce(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	db := pool(t, url, 4)
	exec(t, db, `insert into conversations (form, email, quality, created_at)
		select 'contact_form', 'two' || g || '@example.com', 'hot',
		       now() - case when g % 2 = 0 then interval '1 hour' else interval '10 minutes' end
		from generate_series(1, 300) g`)
	want := sla.Result{Warnings: 150, Breaches: 150}

	// The engines' lease (each batch's deadline) long enough for a machine under any load: a
	// batch cut off while its commit was on the way would be sent but not counted; who leads
	// is not what this test is about.
	cfg := func(holder string) sla.Config {
		return sla.Config{Replica: holder, TickInterval: 20 * time.Millisecond, FollowUpInterval: 20 * time.Millisecond, Lease: time.Minute, BatchSize: 7}
	}
	a := newEngine(t, pool(t, url, 4), cfg("a"), nil, quiet())
	b := newEngine(t, pool(t, url, 4), cfg("b"), nil, quiet())
	// The operator's batches are bounded by its lease (Engine.batch), and any error of its
	// ticks fails the test: a minute, not the default 3s, which a loaded machine exceeds.
	operator := newEngine(t, pool(t, url, 2), sla.Config{Replica: "operator", BatchSize: 5, Lease: time.Minute}, nil, quiet())
	stopA, stopB := runEngine(t, a), runEngine(t, b)

	var opSent sla.Result
	testkit.WaitFor(t, 30*time.Second, "every alert is created", func() (bool, error) {
		res, err := operator.Tick(testkit.Context(t))
		opSent = sum(opSent, res)
		return err == nil && countEvents(t, db) == want, err
	})
	stopA()
	stopB()
	if dup, entries := duplicates(t, db); dup != 0 || entries != 0 {
		t.Errorf("%d alerts sent more than once; %d timeline entries more than events", dup, entries)
	}
	sa, sb := a.Status().Sent, b.Status().Sent
	if got := sum(sa, sb, opSent); got != want {
		t.Errorf("a sent %+v, b %+v, the operator %+v: together %+v, want %+v", sa, sb, opSent, got, want)
	}
	t.Logf("a sent %+v, b %+v, the operator %+v", sa, sb, opSent)
}

// The leader's connection to the database dies (a partition): it can
// neither renew nor release, and its lease runs out (moved in SQL, so the
// test never races the clock; the leases are long enough that nothing
// expires by itself). The other replica takes over at its next try and
// sends what came due meanwhile; when the partition heals, the old leader
// learns it lost the lease and writes nothing; nothing is sent twice.
func TestLeaderFailoverWhenTheLeaderDies(t *testing.T) {
	t.Parallel()
	url, db := leaseHistoryDB(t)
	link := testkit.NewProxy(t, url)

	cfg := func(holder string) sla.Config {
		return sla.Config{Replica: holder, TickInterval: 20 * time.Millisecond, FollowUpInterval: 20 * time.Millisecond, Lease: time.Hour}
	}
	a := newEngine(t, poolVia(t, url, 4, link), cfg("a"), nil, quiet())
	stopA := runEngine(t, a)
	testkit.WaitFor(t, 30*time.Second, "a leads", testkit.Until(func() bool { return a.Status().Leader }))
	b := newEngine(t, pool(t, url, 4), cfg("b"), nil, quiet())
	stopB := runEngine(t, b)

	dueLeads(t, db, 40)
	// a's own count, not only the rows: the cut must not fall between a's
	// commit and a learning of it.
	testkit.WaitFor(t, 30*time.Second, "a sends the first alerts", testkit.Until(func() bool {
		return a.Status().Sent.Breaches == 40 && countEvents(t, db).Breaches == 40
	}))
	if sent := b.Status().Sent; sent != (sla.Result{}) {
		t.Fatalf("b sent %+v while a led", sent)
	}

	link.Cut()
	exec(t, db, "update leader_leases set expires_at = clock_timestamp() where name = 'sla'")
	dueLeads(t, db, 40)
	testkit.WaitFor(t, 30*time.Second, "b takes over and sends what came due", testkit.Until(func() bool {
		return b.Status().Leader && countEvents(t, db).Breaches == 80
	}))
	link.Heal()
	testkit.WaitFor(t, 30*time.Second, "a knows it no longer leads", testkit.Until(func() bool { return !a.Status().Leader }))

	if dup, entries := duplicates(t, db); dup != 0 || entries != 0 {
		t.Errorf("%d alerts sent more than once; %d timeline entries more than events", dup, entries)
	}
	if got, gotA := b.Status().Sent.Breaches, a.Status().Sent.Breaches; got != 40 || gotA != 40 {
		t.Errorf("a sent %d breaches and b %d, want 40 each (b's came due after a died)", gotA, got)
	}
	checkHandovers(t, db, []string{"a", "b"})
	stopB()
	stopA()
}

// A leader that shuts down gives the lease up: the other replica need not
// wait for it to expire.
func TestLeaderHandsOverOnShutdown(t *testing.T) {
	t.Parallel()
	url, db := leaseHistoryDB(t)
	cfg := func(holder string) sla.Config {
		// A long lease: only a release can hand over within the test.
		return sla.Config{Replica: holder, TickInterval: 20 * time.Millisecond, FollowUpInterval: 20 * time.Millisecond, Lease: time.Hour}
	}
	a := newEngine(t, pool(t, url, 4), cfg("a"), nil, quiet())
	stopA := runEngine(t, a)
	testkit.WaitFor(t, 30*time.Second, "a leads", testkit.Until(func() bool { return a.Status().Leader }))
	b := newEngine(t, pool(t, url, 4), sla.Config{Replica: "b", TickInterval: 20 * time.Millisecond, Lease: time.Hour}, nil, quiet())
	stopB := runEngine(t, b)

	stopA()
	if a.Status().Leader {
		t.Fatal("a still leads after it stopped")
	}
	testkit.WaitFor(t, 30*time.Second, "b leads", testkit.Until(func() bool { return b.Status().Leader }))
	dueLeads(t, db, 10)
	testkit.WaitFor(t, 30*time.Second, "b sends", testkit.Until(func() bool { return countEvents(t, db).Breaches == 10 }))
	checkHandovers(t, db, []string{"a", "b"})
	stopB()
}

// The engine's jobs run on its injected clock: scheduled by it, and the SQL
// sees its time, so a warning and a breach carry exactly the times the test
// set, and nothing runs until the test moves the clock.
func TestEngineRunsItsJobsOnItsClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	exec(t, b.db, "update sla_policies set response_window = interval '1 minute' where quality = 'hot'")
	lead := b.lead(t, "hot")
	engine := newEngine(t, b.db, sla.Config{Replica: "clocked", Lease: time.Minute}, b.clock, quiet())
	stop := runEngine(t, engine)
	testkit.WaitFor(t, 30*time.Second, "the engine leads", testkit.Until(func() bool { return engine.Status().Leader }))

	// Each job, once it has run, waits on the clock for its next run, and the
	// campaign for its next try of the lease: three waiters mean all are idle.
	idle := func() {
		t.Helper()
		if err := b.clock.BlockUntilContext(testkit.Context(t), 3); err != nil {
			t.Fatalf("waiting for both jobs to be idle: %v", err)
		}
	}
	idle()
	b.clock.Advance(29 * time.Second)
	idle()
	if f := b.flags(t, lead); f.WarningSentAt != nil {
		t.Fatalf("warned at %v, before the warning time", f.WarningSentAt)
	}
	b.clock.Advance(time.Second)
	idle()
	if f := b.flags(t, lead); !timeIs(f.WarningSentAt, t0.Add(30*time.Second)) || f.Breached {
		t.Fatalf("at t0+30s: %+v, want warned now and not breached", f)
	}
	b.clock.Advance(30 * time.Second)
	idle()
	b.clock.Advance(time.Minute)
	idle()
	stop()

	f := b.flags(t, lead)
	if !timeIs(f.WarningSentAt, t0.Add(30*time.Second)) || !timeIs(f.BreachedAt, t0.Add(time.Minute)) {
		t.Errorf("warned at %v and breached at %v; want t0+30s and t0+60s", f.WarningSentAt, f.BreachedAt)
	}
	if got := b.events(t, lead); !slices.Equal(got, []string{"sla.warning", "sla.breached"}) {
		t.Errorf("events %v", got)
	}
	if got := engine.Status().Sent; got != (sla.Result{Warnings: 1, Breaches: 1}) {
		t.Errorf("sent %+v", got)
	}
}

// The lease is tried on the engines' clock: the leader renews it every third of the lease,
// a follower asks every second, each when the test moves the clock there and not before.
// The leader stops renewing (its link to the database cut) and its lease runs out (moved in
// SQL): the follower takes over at its next try on the clock; the old leader, still cut
// off, stops believing it leads once a lease has passed on its clock since it last renewed.
func TestLeaseTriesRunOnTheEnginesClock(t *testing.T) {
	t.Parallel()
	url, db := leaseHistoryDB(t)
	link := testkit.NewProxy(t, url)
	clock := clockwork.NewFakeClockAt(t0)
	const lease = 30 * time.Second
	cfg := func(holder string) sla.Config { return sla.Config{Replica: holder, Lease: lease} }
	// Each engine, between its runs, waits on the clock three times: its two jobs and
	// its next try of the lease.
	idle := func(engines int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(testkit.Context(t), time.Minute)
		defer cancel()
		if err := clock.BlockUntilContext(ctx, 3*engines); err != nil {
			t.Fatalf("waiting for %d engines to wait on the clock: %v", engines, err)
		}
	}
	// writes counts the versions of the lease row: each take and renewal is one.
	writes := func() int {
		t.Helper()
		var n int
		if err := db.QueryRow(testkit.Context(t), "select count(*) from lease_history where name = 'sla'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	a := newEngine(t, poolVia(t, url, 4, link), cfg("a"), clock, quiet())
	stopA := runEngine(t, a)
	idle(1) // a asked once as it started
	if !a.Status().Leader || writes() != 1 {
		t.Fatalf("a leads %v after %d writes of the lease, want a leading after 1", a.Status().Leader, writes())
	}
	clock.Advance(lease/3 - time.Millisecond)
	idle(1)
	if n := writes(); n != 1 {
		t.Fatalf("a wrote the lease %d times before the clock reached its renewal, want 1", n)
	}
	clock.Advance(time.Millisecond)
	idle(1)
	if n := writes(); n != 2 || !a.Status().Leader {
		t.Fatalf("a wrote the lease %d times when the clock reached its renewal (leads: %v), want 2", n, a.Status().Leader)
	}

	b := newEngine(t, pool(t, url, 4), cfg("b"), clock, quiet())
	stopB := runEngine(t, b)
	idle(2) // b asked once as it started
	if b.Status().Leader {
		t.Fatal("b leads beside a")
	}
	link.Cut()
	exec(t, db, "update leader_leases set expires_at = clock_timestamp() where name = 'sla'")
	clock.Advance(time.Second - time.Millisecond)
	idle(2)
	if b.Status().Leader {
		t.Fatal("b took over before the clock reached its next try")
	}
	clock.Advance(time.Millisecond)
	idle(2)
	if s := b.Status(); !s.Leader || s.Token != 2 {
		t.Fatalf("b at its next try: %+v, want the lead with token 2", s)
	}
	if !a.Status().Leader {
		t.Fatal("a, cut off, stopped believing it leads before its lease passed on its clock")
	}
	// a last renewed at t0 + lease/3: a lease later on its clock it believes no more.
	clock.Advance(lease)
	idle(2)
	if a.Status().Leader {
		t.Error("a, cut off, still believes it leads a lease after it last renewed")
	}
	if !b.Status().Leader {
		t.Error("b no longer leads")
	}
	stopA()
	stopB()
	checkHandovers(t, db, []string{"a", "b"})
}

// runEngine runs e until the returned stop is called (or the test ends),
// and fails the test if Run fails.
func runEngine(t *testing.T, e *sla.Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("engine: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("engine did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// dueLeads saves n HOT leads whose deadline passed an hour ago.
func dueLeads(t *testing.T, db *pgxpool.Pool, n int) {
	t.Helper()
	exec(t, db, `insert into conversations (form, email, quality, created_at)
		select 'contact_form', 'due' || g || '@example.com', 'hot', now() - interval '75 minutes'
		from generate_series(1, $1) g`, n)
}

// leaseHistoryDB is a database of the test's own, its URL and a pool on it, that keeps
// every version of the lease rows, so a test can check each handover after the fact.
func leaseHistoryDB(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	url := dbtest.NewURL(t)
	db := pool(t, url, 4)
	exec(t, db, `create table lease_history as select *, clock_timestamp() as written_at from leader_leases with no data;
		create function record_lease() returns trigger language plpgsql as $$
		begin
			insert into public.lease_history select new.*, clock_timestamp();
			return null;
		end $$;
		create trigger record_lease after insert or update on leader_leases for each row execute function record_lease()`)
	return url, db
}

// checkHandovers checks that the lease went to holders in this order, each
// taking it only after the previous holder's last expiry.
func checkHandovers(t *testing.T, db *pgxpool.Pool, holders []string) {
	t.Helper()
	type version struct {
		Holder     string
		Token      int64
		AcquiredAt time.Time
		ExpiresAt  time.Time
	}
	rows, _ := db.Query(testkit.Context(t), "select holder, token, acquired_at, expires_at from lease_history where name = 'sla' order by written_at")
	versions, err := pgx.CollectRows(rows, pgx.RowToStructByPos[version])
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for i, v := range versions {
		if i == 0 || v.Holder != versions[i-1].Holder {
			order = append(order, v.Holder)
		}
		if i == 0 {
			continue
		}
		prev := versions[i-1]
		switch {
		case v.Holder == prev.Holder && v.Token != prev.Token:
			t.Errorf("%s renewed with token %d, held %d", v.Holder, v.Token, prev.Token)
		case v.Holder != prev.Holder && v.Token != prev.Token+1:
			t.Errorf("%s took over with token %d after token %d", v.Holder, v.Token, prev.Token)
		case v.Holder != prev.Holder && v.AcquiredAt.Before(prev.ExpiresAt):
			t.Errorf("%s took over at %s, before %s's lease expired at %s", v.Holder, v.AcquiredAt, prev.Holder, prev.ExpiresAt)
		case v.Holder != prev.Holder:
			t.Logf("%s took over %s after %s's lease expired", v.Holder, v.AcquiredAt.Sub(prev.ExpiresAt).Round(time.Millisecond), prev.Holder)
		}
	}
	if !slices.Equal(order, holders) {
		t.Errorf("the lease went to %v, want %v", order, holders)
	}
}

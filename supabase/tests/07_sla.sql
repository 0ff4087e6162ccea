-- The SLA engine's SQL as the admin panel reads its results: a warning and a breach once each,
-- at the times the policy says; follow-ups due and overdue; the daily SLA figures under
-- row-level security; who may call what; and the leader lease. The engine's functions take
-- the time as p_now, so nothing here waits for a clock.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(43);

-- A one-minute window for HOT leads: warned halfway (30 s), breached at 60 s.
update sla_policies set response_window = interval '1 minute' where quality = 'hot';

insert into conversations (id, form, email, quality, source, created_at) values
  ('70000000-0000-0000-0000-000000000001', 'chatbot', 'waits@example.com', 'hot', 'website', '2026-01-05 10:00:00+00'),
  ('70000000-0000-0000-0000-000000000002', 'chatbot', 'answered@example.com', 'hot', 'website', '2026-01-05 10:00:00+00'),
  ('70000000-0000-0000-0000-000000000003', 'chatbot', 'closed@example.com', 'hot', 'facebook', '2026-01-05 10:00:00+00'),
  ('70000000-0000-0000-0000-000000000004', 'chatbot', 'botonly@example.com', 'hot', 'facebook', '2026-01-05 10:00:00+00');
insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at) values
  ('70000000-0000-0000-0000-000000000002', 'agent', 'agent-1', 'Calling you now', '2026-01-05 10:00:20+00'),
  ('70000000-0000-0000-0000-000000000004', 'bot', null, 'An agent will call you', '2026-01-05 10:00:05+00');
update conversations set status = 'closed' where id = '70000000-0000-0000-0000-000000000003';

select results_eq(
  $$select sla_warning_at, sla_response_deadline from conversations where id = '70000000-0000-0000-0000-000000000001'$$,
  $$values ('2026-01-05 10:00:30+00'::timestamptz, '2026-01-05 10:01:00+00'::timestamptz)$$,
  'a one-minute window is warned at 30 s and due at 60 s'
);

-- The Go service calls the ticks as service_role.
set local role service_role;
select results_eq($$select * from sla_tick('2026-01-05 10:00:29.999+00')$$, $$values (0, 0)$$, 'nothing is due before the warning time');
select results_eq($$select * from sla_tick('2026-01-05 10:00:30+00')$$, $$values (2, 0)$$, 'at 30 s the two unanswered open leads are warned');
select results_eq($$select * from sla_tick('2026-01-05 10:00:45+00')$$, $$values (0, 0)$$, 'a warning is sent once');
select results_eq($$select * from sla_tick('2026-01-05 10:01:00+00')$$, $$values (0, 2)$$, 'at 60 s the two are breached');
select results_eq($$select * from sla_tick('2026-01-05 11:00:00+00')$$, $$values (0, 0)$$, 'a breach is sent once');
reset role;

-- What the admin panel reads through PostgREST.
set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000001", "role": "authenticated", "app_metadata": {"role": "admin"}}';

select results_eq(
  $$select sla_warning_sent_at, sla_breached, sla_breached_at from conversations where id = '70000000-0000-0000-0000-000000000001'$$,
  $$values ('2026-01-05 10:00:30+00'::timestamptz, true, '2026-01-05 10:01:00+00'::timestamptz)$$,
  'the lead says when it was warned and when it was breached'
);
select results_eq(
  $$select e.event_type::text, e.idempotency_key, e.processed from lead_events e
     where e.conversation_id = '70000000-0000-0000-0000-000000000001' and e.event_type <> 'lead.created'
     order by e.created_at, e.event_type$$,
  $$values ('sla.warning', 'sla.warning:70000000-0000-0000-0000-000000000001', false),
           ('sla.breached', 'sla.breached:70000000-0000-0000-0000-000000000001', false)$$,
  'the lead has one sla.warning and one sla.breached event, waiting for the dispatcher'
);
select results_eq(
  $$select event_type::text, title, created_at, actor_type::text from conversation_timeline
     where conversation_id = '70000000-0000-0000-0000-000000000001' order by created_at$$,
  $$values ('created', 'Lead created', '2026-01-05 10:00:00+00'::timestamptz, 'customer'),
           ('sla_warning', 'SLA deadline approaching', '2026-01-05 10:00:30+00'::timestamptz, 'system'),
           ('sla_breached', 'SLA breached', '2026-01-05 10:01:00+00'::timestamptz, 'system')$$,
  'the timeline tells the story: created, warned at 30 s, breached at 60 s'
);
select is(
  (select description from conversation_timeline
    where conversation_id = '70000000-0000-0000-0000-000000000001' and event_type = 'sla_warning'),
  'Not answered yet: 30 s left (HOT lead)',
  'the warning entry says how long is left'
);
select is(
  (select metadata ->> 'lead_event_id' from conversation_timeline
    where conversation_id = '70000000-0000-0000-0000-000000000001' and event_type = 'sla_breached'),
  (select id::text from lead_events where idempotency_key = 'sla.breached:70000000-0000-0000-0000-000000000001'),
  'the breach entry points at its event'
);
select is_empty(
  $$select event_type from lead_events where conversation_id = '70000000-0000-0000-0000-000000000002'
     and event_type::text like 'sla.%'$$,
  'a lead an agent answered before its warning gets no SLA event'
);
select is_empty(
  $$select event_type from lead_events where conversation_id = '70000000-0000-0000-0000-000000000003'
     and event_type::text like 'sla.%'$$,
  'a closed lead gets no SLA event'
);
select results_eq(
  $$select count(*)::int from lead_events where conversation_id = '70000000-0000-0000-0000-000000000004'
     and event_type::text like 'sla.%'$$,
  $$values (2)$$,
  'a bot''s reply does not answer a lead: it is warned and breached'
);

-- The daily figures and the per-lead outcomes.
select results_eq(
  $$select day, quality::text, source, leads, answered, answered_in_time, breached, median_first_response_seconds
      from sla_daily_summary where day = '2026-01-05' order by source$$,
  $$values ('2026-01-05'::date, 'hot', 'facebook', 2::bigint, 0::bigint, 0::bigint, 1::bigint, null::double precision),
           ('2026-01-05'::date, 'hot', 'website', 2::bigint, 1::bigint, 1::bigint, 1::bigint, 20::double precision)$$,
  'the daily view counts leads, answers in time and breaches per quality and source (the closed lead is no breach)'
);
select results_eq(
  $$select answered_in_time, breached, time_to_first_response from sla_lead_outcomes
     where conversation_id = '70000000-0000-0000-0000-000000000002'$$,
  $$values (true, false, interval '20 seconds')$$,
  'a lead answered at 20 s was answered in time'
);
select results_eq(
  $$select holder, token from leader_leases where name = 'sla'$$,
  $$values (null::text, 0::bigint)$$,
  'an admin can see who runs the SLA jobs (nobody yet)'
);
select throws_ok(
  $$select * from sla_tick(now())$$, '42501', null,
  'an admin cannot run the SLA tick through the API'
);
select throws_ok(
  $$select * from sla_summary(now() - interval '1 day', now())$$, '42501', null,
  'nor call the service''s summary function (the panel reads sla_daily_summary)'
);
select throws_ok(
  $$update leader_leases set holder = 'me'$$, '42501', null,
  'nor take the leader lease'
);
reset role;

-- A signed-in user who is not an admin reads nothing through the views.
set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000002", "role": "authenticated", "app_metadata": {}}';
select is_empty($$select * from sla_daily_summary$$, 'a non-admin reads no SLA figures');
select is_empty($$select * from sla_lead_outcomes$$, 'a non-admin reads no SLA outcomes');
select is_empty($$select * from leader_leases$$, 'a non-admin reads no lease');
reset role;

set local role anon;
set local request.jwt.claims = '{"role": "anon"}';
select throws_ok($$select * from sla_daily_summary$$, '42501', null, 'anon may not read the SLA figures at all');
select throws_ok($$select * from sla_tick(now())$$, '42501', null, 'anon may not run the SLA tick');
select throws_ok($$select * from leader_lease_acquire('sla', 'anon', interval '1 minute')$$, '42501', null, 'anon may not take the lease');
reset role;

-- Re-scoring moves the clock; a warning after the deadline is not sent (the breach is).
insert into conversations (id, form, email, quality, created_at) values
  ('70000000-0000-0000-0000-000000000005', 'chatbot', 'rescored@example.com', 'cold', '2026-01-06 10:00:00+00');
update conversations set quality = 'warm' where id = '70000000-0000-0000-0000-000000000005';
set local role service_role;
select results_eq($$select * from sla_tick('2026-01-06 10:29:59+00')$$, $$values (0, 0)$$, 'a lead re-scored WARM is not warned before its new warning time');
select results_eq($$select * from sla_tick('2026-01-06 12:00:00+00')$$, $$values (0, 1)$$, 'a tick after its new deadline breaches it without a late warning');
reset role;

-- Follow-ups: due at follow_up_date, overdue at sla_deadline while still scheduled.
insert into follow_up_tasks (id, conversation_id, follow_up_date, sla_deadline) values
  ('71000000-0000-0000-0000-000000000001', '70000000-0000-0000-0000-000000000002', '2026-01-07 09:00:00+00', '2026-01-07 12:00:00+00'),
  ('71000000-0000-0000-0000-000000000002', '70000000-0000-0000-0000-000000000002', '2026-01-07 09:00:00+00', '2026-01-07 12:00:00+00');
set local role service_role;
select results_eq($$select * from follow_up_tick('2026-01-07 08:59:59+00')$$, $$values (0, 0)$$, 'no follow-up is due before its date');
select results_eq($$select * from follow_up_tick('2026-01-07 09:00:00+00')$$, $$values (2, 0)$$, 'both follow-ups come due at their date');
select results_eq($$select * from follow_up_tick('2026-01-07 10:00:00+00')$$, $$values (0, 0)$$, 'a follow-up is announced due once');
reset role;
update follow_up_tasks set status = 'completed' where id = '71000000-0000-0000-0000-000000000002';
set local role service_role;
select results_eq($$select * from follow_up_tick('2026-01-07 12:00:00+00')$$, $$values (0, 1)$$, 'at the deadline the open follow-up turns overdue, the completed one does not');
select results_eq($$select * from follow_up_tick('2026-01-08 12:00:00+00')$$, $$values (0, 0)$$, 'an overdue follow-up is announced once');
reset role;

set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000001", "role": "authenticated", "app_metadata": {"role": "admin"}}';
select results_eq(
  $$select status::text, overdue_at, sla_breached, due_notified_at from follow_up_tasks where id = '71000000-0000-0000-0000-000000000001'$$,
  $$values ('overdue', '2026-01-07 12:00:00+00'::timestamptz, true, '2026-01-07 09:00:00+00'::timestamptz)$$,
  'the overdue task says when it came due and when it went overdue'
);
select results_eq(
  $$select event_type::text, follow_up_task_id::text, idempotency_key from lead_events
     where follow_up_task_id is not null order by created_at, idempotency_key$$,
  $$values ('followup.due', '71000000-0000-0000-0000-000000000001', 'followup.due:71000000-0000-0000-0000-000000000001'),
           ('followup.due', '71000000-0000-0000-0000-000000000002', 'followup.due:71000000-0000-0000-0000-000000000002'),
           ('followup.overdue', '71000000-0000-0000-0000-000000000001', 'followup.overdue:71000000-0000-0000-0000-000000000001')$$,
  'each follow-up event names its task and is keyed by it'
);
select results_eq(
  $$select title, created_at from conversation_timeline
     where conversation_id = '70000000-0000-0000-0000-000000000002' and event_type in ('followup_due', 'followup_overdue')
     order by created_at, title$$,
  $$values ('Follow-up due', '2026-01-07 09:00:00+00'::timestamptz), ('Follow-up due', '2026-01-07 09:00:00+00'::timestamptz),
           ('Follow-up overdue', '2026-01-07 12:00:00+00'::timestamptz)$$,
  'the lead''s timeline shows the follow-ups coming due and going overdue'
);
reset role;

-- The leader lease: one holder at a time, taken over only once expired, with a new token.
set local role service_role;
select results_eq($$select held, holder, token from leader_lease_acquire('sla', 'replica-a', interval '1 minute')$$,
  $$values (true, 'replica-a', 1::bigint)$$, 'a replica takes the free lease with token 1');
select results_eq($$select held, holder, token from leader_lease_acquire('sla', 'replica-b', interval '1 minute')$$,
  $$values (false, 'replica-a', 1::bigint)$$, 'another replica cannot take a live lease');
select ok(leader_lease_fence('sla', 'replica-a', 1), 'the holder passes the fence');
reset role;
-- replica-a stops renewing; its lease runs out.
update leader_leases set expires_at = clock_timestamp() - interval '1 second' where name = 'sla';
set local role service_role;
select results_eq($$select held, holder, token from leader_lease_acquire('sla', 'replica-b', interval '1 minute')$$,
  $$values (true, 'replica-b', 2::bigint)$$, 'once expired the lease passes on, with the next token');
select ok(not leader_lease_fence('sla', 'replica-a', 1), 'the old holder is fenced off');
select ok(leader_lease_release('sla', 'replica-b', 2), 'the holder releases the lease');
select results_eq($$select held, holder, token from leader_lease_acquire('sla', 'replica-a', interval '1 minute')$$,
  $$values (true, 'replica-a', 3::bigint)$$, 'a released lease is taken at once');
reset role;

select * from finish();
rollback;

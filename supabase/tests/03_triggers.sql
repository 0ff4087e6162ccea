-- What the triggers write when a lead arrives and changes: its event, its timeline, its SLA
-- deadline and warning, its first response. Times come from created_at and sent_at, so no
-- test waits for a clock.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(42);

-- A HOT lead (phone + property + short timeline), a WARM one (phone + budget) and a COLD one.
insert into conversations (id, form, email, phone, property_id, timeline, created_at, updated_at) values
  ('20000000-0000-0000-0000-000000000001', 'property_inquiry', 'hot@example.com', '+971501234567', 'prop-1', 'asap',
   '2026-01-01 10:00:00+00', '2026-01-01 10:00:00+00');
insert into conversations (id, form, email, phone, budget, created_at) values
  ('20000000-0000-0000-0000-000000000002', 'contact_form', 'warm@example.com', '+971501234568', 'AED 2M', '2026-01-01 10:00:00+00');
insert into conversations (id, form, email, message, created_at) values
  ('20000000-0000-0000-0000-000000000003', 'contact_form', 'cold@example.com', 'Just looking', '2026-01-01 10:00:00+00');

-- On insert: the lead.created event, the timeline entry and the deadline, once each.
select results_eq(
  $$select event_type::text, idempotency_key, processed, payload ->> 'quality'
      from lead_events where conversation_id = '20000000-0000-0000-0000-000000000001'$$,
  $$values ('lead.created', 'lead.created:20000000-0000-0000-0000-000000000001', false, 'hot')$$,
  'a new lead has exactly one lead.created event, unprocessed, keyed by the lead'
);
select results_eq(
  $$select event_type::text, title, actor_type::text, created_at
      from conversation_timeline where conversation_id = '20000000-0000-0000-0000-000000000001'$$,
  $$values ('created', 'Lead created', 'customer', '2026-01-01 10:00:00+00'::timestamptz)$$,
  'a new lead has exactly one "Lead created" entry, at the time the lead arrived'
);
select results_eq(
  $$select t.description, t.metadata ->> 'lead_event_id', t.metadata ->> 'quality'
      from conversation_timeline t where t.conversation_id = '20000000-0000-0000-0000-000000000001'$$,
  $$select 'property inquiry lead from website: HOT (score 65)', e.id::text, 'hot'
      from lead_events e where e.conversation_id = '20000000-0000-0000-0000-000000000001'$$,
  'the "Lead created" entry describes the lead and names its lead.created event'
);
-- A lead whose lead.created key is already taken gets neither a second event nor an entry.
insert into lead_events (event_type, conversation_id, payload, idempotency_key)
values ('lead.created', '20000000-0000-0000-0000-000000000003', '{}',
        'lead.created:20000000-0000-0000-0000-000000000009');
insert into conversations (id, form, email, created_at) values
  ('20000000-0000-0000-0000-000000000009', 'contact_form', 'taken@example.com', '2026-01-01 10:00:00+00');
select results_eq(
  $$select (select count(*)::int from lead_events where conversation_id = '20000000-0000-0000-0000-000000000009'),
           (select count(*)::int from conversation_timeline where conversation_id = '20000000-0000-0000-0000-000000000009')$$,
  $$values (0, 0)$$,
  'a lead whose lead.created key is taken gets no event and no "Lead created" entry'
);
select results_eq(
  $$select quality::text, lead_score, score_reasons from conversations where id = '20000000-0000-0000-0000-000000000001'$$,
  $$values ('hot', 65, array['phone number given', 'asks about a specific property', 'short timeline: asap'])$$,
  'a lead without a quality is scored on insert, with its reasons'
);

-- Deadlines and warnings per quality.
select results_eq(
  $$select quality::text, sla_response_deadline, sla_warning_at from conversations
     where id in ('20000000-0000-0000-0000-000000000001', '20000000-0000-0000-0000-000000000002', '20000000-0000-0000-0000-000000000003')
     order by sla_response_deadline$$,
  $$values ('hot', '2026-01-01 10:15:00+00'::timestamptz, '2026-01-01 10:07:30+00'::timestamptz),
           ('warm', '2026-01-01 11:00:00+00'::timestamptz, '2026-01-01 10:30:00+00'::timestamptz),
           ('cold', '2026-01-02 10:00:00+00'::timestamptz, '2026-01-02 09:30:00+00'::timestamptz)$$,
  'HOT is due in 15 min and warned halfway; WARM in 1 h, COLD in 24 h, each warned 30 min before'
);

-- Changes to a lead never write a second lead.created.
-- (An assignment is written on the timeline: 24_console.sql.)
update conversations set name = 'Renamed'
 where id = '20000000-0000-0000-0000-000000000001';
select is(
  (select count(*)::int from lead_events where conversation_id = '20000000-0000-0000-0000-000000000001' and event_type = 'lead.created'),
  1, 'updating a lead does not announce it again'
);
select is(
  (select count(*)::int from conversation_timeline where conversation_id = '20000000-0000-0000-0000-000000000001'),
  1, 'an update of other columns writes no timeline entry'
);
select is(
  (select updated_at from conversations where id = '20000000-0000-0000-0000-000000000001'),
  now(), 'an update moves updated_at'
);

-- A stated quality stands.
insert into conversations (id, form, phone, quality, created_at) values
  ('20000000-0000-0000-0000-000000000004', 'chatbot', '+971501234569', 'hot', '2026-01-01 10:00:00+00');
select results_eq(
  $$select quality::text, score_reasons[1], sla_response_deadline from conversations where id = '20000000-0000-0000-0000-000000000004'$$,
  $$values ('hot', 'quality stated at intake: hot', '2026-01-01 10:15:00+00'::timestamptz)$$,
  'a stated HOT stands over a COLD score and gets the HOT deadline'
);

-- Re-scoring an unanswered lead moves its deadline and warning, and says so.
update conversations set quality = 'hot' where id = '20000000-0000-0000-0000-000000000003';
select results_eq(
  $$select sla_response_deadline, sla_warning_at from conversations where id = '20000000-0000-0000-0000-000000000003'$$,
  $$values ('2026-01-01 10:15:00+00'::timestamptz, '2026-01-01 10:07:30+00'::timestamptz)$$,
  'a COLD lead re-scored HOT is due 15 min after it arrived'
);
select results_eq(
  $$select title, metadata ->> 'from', metadata ->> 'to' from conversation_timeline
     where conversation_id = '20000000-0000-0000-0000-000000000003' and event_type = 'quality_changed'$$,
  $$values ('Quality changed from COLD to HOT', 'cold', 'hot')$$,
  'the re-score is on the timeline'
);

-- Editing a policy changes the deadlines of new leads, not of existing ones.
update sla_policies set response_window = interval '5 minutes' where quality = 'hot';
insert into conversations (id, form, phone, property_id, timeline, created_at) values
  ('20000000-0000-0000-0000-000000000005', 'property_inquiry', '+971501234570', 'prop-2', 'asap', '2026-01-01 12:00:00+00');
select results_eq(
  $$select sla_response_deadline, sla_warning_at from conversations where id = '20000000-0000-0000-0000-000000000005'$$,
  $$values ('2026-01-01 12:05:00+00'::timestamptz, '2026-01-01 12:02:30+00'::timestamptz)$$,
  'after HOT is set to 5 min, a new HOT lead is due in 5 min'
);
select is(
  (select sla_response_deadline from conversations where id = '20000000-0000-0000-0000-000000000001'),
  '2026-01-01 10:15:00+00'::timestamptz,
  'an existing lead keeps its deadline when the policy changes'
);
update sla_policies set warn_before = interval '1 hour' where quality = 'cold';
insert into conversations (id, form, email, created_at) values
  ('20000000-0000-0000-0000-000000000006', 'contact_form', 'cold2@example.com', '2026-01-01 12:00:00+00');
select is(
  (select sla_warning_at from conversations where id = '20000000-0000-0000-0000-000000000006'),
  '2026-01-02 11:00:00+00'::timestamptz,
  'warn_before moves the warning of new leads'
);

-- An agent's message answers the lead, once.
insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at) values
  ('20000000-0000-0000-0000-000000000001', 'customer', null, 'Is it available?', '2026-01-01 10:01:00+00'),
  ('20000000-0000-0000-0000-000000000001', 'bot', 'chatbot', 'An agent will be with you shortly.', '2026-01-01 10:01:05+00');
select is(
  (select first_response_at from conversations where id = '20000000-0000-0000-0000-000000000001'),
  null, 'customer and bot messages do not answer the lead'
);
insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at) values
  ('20000000-0000-0000-0000-000000000001', 'agent', 'agent-7', 'Yes, it is. When can you view it?', '2026-01-01 10:05:00+00');
select is(
  (select first_response_at from conversations where id = '20000000-0000-0000-0000-000000000001'),
  '2026-01-01 10:05:00+00'::timestamptz,
  'an agent message sets first_response_at to the time it was sent'
);
select results_eq(
  $$select idempotency_key, payload ->> 'via', (payload ->> 'within_sla')::boolean
      from lead_events where conversation_id = '20000000-0000-0000-0000-000000000001' and event_type = 'lead.responded'$$,
  $$values ('lead.responded:20000000-0000-0000-0000-000000000001', 'message', true)$$,
  'the first answer is announced once, as within the SLA'
);
select results_eq(
  $$select title, actor_type::text, actor_id, created_at from conversation_timeline
     where conversation_id = '20000000-0000-0000-0000-000000000001' and event_type = 'first_response'$$,
  $$values ('First response', 'agent', 'agent-7', '2026-01-01 10:05:00+00'::timestamptz)$$,
  'the first answer is on the timeline with the agent who gave it'
);
insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at) values
  ('20000000-0000-0000-0000-000000000001', 'agent', 'agent-8', 'Following up.', '2026-01-01 10:09:00+00');
select is(
  (select first_response_at from conversations where id = '20000000-0000-0000-0000-000000000001'),
  '2026-01-01 10:05:00+00'::timestamptz,
  'a second agent message leaves first_response_at alone'
);
select is(
  (select count(*)::int from lead_events where conversation_id = '20000000-0000-0000-0000-000000000001' and event_type = 'lead.responded'),
  1, 'a second agent message announces nothing'
);
select is(
  (select count(*)::int from conversation_timeline where conversation_id = '20000000-0000-0000-0000-000000000001' and event_type = 'first_response'),
  1, 'a second agent message adds no first-response entry'
);
select results_eq(
  $$select seq < lead(seq) over (order by sent_at) from chat_messages
     where conversation_id = '20000000-0000-0000-0000-000000000001' order by sent_at limit 3$$,
  $$values (true), (true), (true)$$,
  'messages keep the order they were saved in'
);

-- A late answer is recorded as past the deadline.
insert into chat_messages (conversation_id, sender_type, sender_id, content, sent_at) values
  ('20000000-0000-0000-0000-000000000004', 'agent', 'agent-7', 'Sorry for the wait.', '2026-01-01 10:40:00+00');
select is(
  (select (payload ->> 'within_sla')::boolean from lead_events
    where conversation_id = '20000000-0000-0000-0000-000000000004' and event_type = 'lead.responded'),
  false, 'an answer after the deadline is announced as outside the SLA'
);

-- Re-scoring an answered lead leaves its deadline: the SLA was met or missed already.
update conversations set quality = 'cold' where id = '20000000-0000-0000-0000-000000000001';
select is(
  (select sla_response_deadline from conversations where id = '20000000-0000-0000-0000-000000000001'),
  '2026-01-01 10:15:00+00'::timestamptz,
  'an answered lead keeps its deadline when re-scored'
);

-- Status changes: an event per change, a timeline entry, and the first answer.
update conversations set status = 'contacted' where id = '20000000-0000-0000-0000-000000000002';
select results_eq(
  $$select payload ->> 'from', payload ->> 'to' from lead_events
     where conversation_id = '20000000-0000-0000-0000-000000000002' and event_type = 'lead.status_changed'$$,
  $$values ('new', 'contacted')$$,
  'a status change writes a lead.status_changed event with the old and new status'
);
select results_eq(
  $$select title, actor_type::text, metadata ->> 'from', metadata ->> 'to' from conversation_timeline
     where conversation_id = '20000000-0000-0000-0000-000000000002' and event_type = 'status_changed'$$,
  $$values ('Status changed from new to contacted', 'system', 'new', 'contacted')$$,
  'a status change is on the timeline (by the system when no user is signed in)'
);
select is(
  (select first_response_at from conversations where id = '20000000-0000-0000-0000-000000000002'),
  now(), 'marking a lead contacted answers it'
);
select results_eq(
  $$select payload ->> 'via' from lead_events
     where conversation_id = '20000000-0000-0000-0000-000000000002' and event_type = 'lead.responded'$$,
  $$values ('status')$$,
  'marking a lead contacted announces the first answer'
);
select is(
  (select count(*)::int from conversation_timeline
    where conversation_id = '20000000-0000-0000-0000-000000000002' and event_type = 'first_response'),
  1, 'marking a lead contacted puts the first answer on the timeline'
);

update conversations set status = 'qualified' where id = '20000000-0000-0000-0000-000000000002';
update conversations set status = 'qualified' where id = '20000000-0000-0000-0000-000000000002';
select is(
  (select count(distinct idempotency_key)::int from lead_events
    where conversation_id = '20000000-0000-0000-0000-000000000002' and event_type = 'lead.status_changed'),
  2, 'each real status change is its own event; setting the same status again is none'
);
select is(
  (select count(*)::int from lead_events
    where conversation_id = '20000000-0000-0000-0000-000000000002' and event_type = 'lead.responded'),
  1, 'a lead is answered once however its status moves'
);

update conversations set status = 'converted' where id = '20000000-0000-0000-0000-000000000006';
select isnt(
  (select first_response_at from conversations where id = '20000000-0000-0000-0000-000000000006'),
  null, 'a lead converted straight from new counts as answered'
);

update conversations set status = 'spam' where id = '20000000-0000-0000-0000-000000000005';
select results_eq(
  $$select closed_at, first_response_at from conversations where id = '20000000-0000-0000-0000-000000000005'$$,
  $$values (now(), null::timestamptz)$$,
  'marking a lead spam closes it without answering it'
);
update conversations set status = 'new' where id = '20000000-0000-0000-0000-000000000005';
select is(
  (select closed_at from conversations where id = '20000000-0000-0000-0000-000000000005'),
  null, 'reopening a lead clears closed_at'
);

-- Follow-up tasks keep their completion time.
insert into follow_up_tasks (id, conversation_id, follow_up_date, sla_deadline, updated_at) values
  ('30000000-0000-0000-0000-000000000001', '20000000-0000-0000-0000-000000000001', '2026-01-02 09:00:00+00', '2026-01-02 10:00:00+00', '2026-01-01 00:00:00+00');
select is(
  (select completed_at from follow_up_tasks where id = '30000000-0000-0000-0000-000000000001'),
  null, 'a scheduled follow-up is not completed'
);
update follow_up_tasks set status = 'overdue' where id = '30000000-0000-0000-0000-000000000001';
select results_eq(
  $$select overdue_at, updated_at from follow_up_tasks where id = '30000000-0000-0000-0000-000000000001'$$,
  $$values (now(), now())$$,
  'a follow-up that goes overdue records when, and its update time moves'
);
update follow_up_tasks set status = 'completed' where id = '30000000-0000-0000-0000-000000000001';
select results_eq(
  $$select completed_at, overdue_at from follow_up_tasks where id = '30000000-0000-0000-0000-000000000001'$$,
  $$values (now(), now())$$,
  'completing a follow-up records when, and keeps when it went overdue'
);
update follow_up_tasks set status = 'scheduled' where id = '30000000-0000-0000-0000-000000000001';
select is(
  (select completed_at from follow_up_tasks where id = '30000000-0000-0000-0000-000000000001'),
  null, 'rescheduling a follow-up clears completed_at'
);

-- Closing a lead (or marking it spam) cancels its scheduled follow-ups; done ones stay done.
insert into follow_up_tasks (id, conversation_id, follow_up_date, status) values
  ('30000000-0000-0000-0000-000000000002', '20000000-0000-0000-0000-000000000001', '2026-01-03 09:00:00+00', 'scheduled'),
  ('30000000-0000-0000-0000-000000000003', '20000000-0000-0000-0000-000000000001', '2026-01-03 09:00:00+00', 'completed');
update conversations set status = 'closed' where id = '20000000-0000-0000-0000-000000000001';
select results_eq(
  $$select id::text, status::text from follow_up_tasks where id in ('30000000-0000-0000-0000-000000000002', '30000000-0000-0000-0000-000000000003') order by id$$,
  $$values ('30000000-0000-0000-0000-000000000002', 'cancelled'), ('30000000-0000-0000-0000-000000000003', 'completed')$$,
  'closing a lead cancels its scheduled follow-ups and leaves completed ones alone'
);
update conversations set status = 'new' where id = '20000000-0000-0000-0000-000000000001';
select is(
  (select status::text from follow_up_tasks where id = '30000000-0000-0000-0000-000000000002'),
  'cancelled', 'reopening the lead does not bring a cancelled follow-up back'
);

-- A lead without an SLA policy for its quality is refused rather than saved without a deadline.
delete from sla_policies where quality = 'warm';
select throws_ok(
  $$insert into conversations (form, phone, budget) values ('contact_form', '+971501234571', 'AED 1M')$$,
  'P0001', 'no SLA policy for warm leads',
  'a lead whose quality has no SLA policy is refused'
);

select * from finish();
rollback;

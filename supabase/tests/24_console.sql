-- The console's actions through PostgREST (supabase-js `rpc` and table writes), as each role
-- runs them: an admin acts, and every action's timeline entry names them (id and email);
-- a user who is not an admin, and anon, cannot. Also through the service, which names its
-- actor in leadrelay.actor_id / leadrelay.actor_email.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(24);

insert into conversations (id, form, email, quality) values
  ('24000000-0000-0000-0000-000000000001', 'contact_form', 'console@example.com', 'hot'),
  ('24000000-0000-0000-0000-000000000002', 'contact_form', 'other@example.com', 'cold');
-- A failed Slack delivery of the first lead's lead.created event.
insert into notification_logs (lead_event_id, conversation_id, channel, status, attempts, last_error)
select id, conversation_id, 'slack', 'failed', 4, 'slack: HTTP 500'
  from lead_events where conversation_id = '24000000-0000-0000-0000-000000000001';
update lead_events set processed = true, processed_at = now() where conversation_id = '24000000-0000-0000-0000-000000000001';

-- anon: none of the admin's functions.
set local role anon;
set local request.jwt.claims = '{"role": "anon"}';
select throws_ok($$select admin_mark_contacted('24000000-0000-0000-0000-000000000001')$$, '42501', null,
  'anon cannot mark a lead contacted');
select throws_ok($$select admin_replay_failed()$$, '42501', null, 'anon cannot replay deliveries');
reset role;

-- A signed-in user who is not an admin: refused by each function, and by the policies.
set local role authenticated;
set local request.jwt.claims = '{"sub": "24aaaaaa-0000-0000-0000-000000000002", "role": "authenticated",
  "email": "agent@truenester.com", "app_metadata": {"provider": "email"}, "user_metadata": {"role": "admin"}}';
select throws_ok($$select admin_add_note('24000000-0000-0000-0000-000000000001', 'hi')$$, '42501', null,
  'a non-admin cannot add a note');
select throws_ok($$select admin_replay_event((select id from lead_events limit 1))$$, '42501', null,
  'a non-admin cannot replay an event (the RPC checks the admin role)');
select throws_ok($$select admin_reply('24000000-0000-0000-0000-000000000001', 'hello')$$, '42501', null,
  'a non-admin cannot answer a customer');
select throws_ok(
  $$insert into conversation_timeline (conversation_id, event_type, title, actor_type, actor_id)
    values ('24000000-0000-0000-0000-000000000001', 'note', 'Note', 'agent', '24aaaaaa-0000-0000-0000-000000000002')$$,
  '42501', null, 'a non-admin cannot write a note straight into the timeline');
reset role;

-- An admin, as supabase-js runs their calls.
set local role authenticated;
set local request.jwt.claims = '{"sub": "24aaaaaa-0000-0000-0000-000000000001", "role": "authenticated",
  "email": "admin@truenester.com", "app_metadata": {"provider": "email", "role": "admin"}}';

select is(admin_mark_contacted('24000000-0000-0000-0000-000000000001'), true, 'an admin marks a new lead contacted');
select is(admin_mark_contacted('24000000-0000-0000-0000-000000000001'), false, 'marking it again changes nothing');
select isnt_empty(
  $$select 1 from conversation_timeline where conversation_id = '24000000-0000-0000-0000-000000000001'
      and event_type = 'status_changed' and actor_type = 'agent' and actor_id = '24aaaaaa-0000-0000-0000-000000000001'
      and metadata ->> 'actor_email' = 'admin@truenester.com'$$,
  'the status change names the admin by id and email');
select isnt(
  (select first_response_at from conversations where id = '24000000-0000-0000-0000-000000000001'), null,
  'marking contacted meets the SLA');

select lives_ok($$select admin_add_note('24000000-0000-0000-0000-000000000001', 'Called, left a message')$$,
  'an admin adds a note');
select lives_ok($$select admin_reply('24000000-0000-0000-0000-000000000002', 'The flat is available')$$,
  'an admin answers a customer');
select results_eq(
  $$select sender_type::text, sender_id from chat_messages where conversation_id = '24000000-0000-0000-0000-000000000002'$$,
  $$values ('agent', '24aaaaaa-0000-0000-0000-000000000001')$$,
  'the answer is the admin''s own message');
select isnt(
  (select first_response_at from conversations where id = '24000000-0000-0000-0000-000000000002'), null,
  'an agent''s answer meets the SLA');
select lives_ok(
  $$insert into conversation_timeline (conversation_id, event_type, title, actor_type, actor_id)
    values ('24000000-0000-0000-0000-000000000002', 'note', 'Note', 'agent', '24aaaaaa-0000-0000-0000-000000000001')$$,
  'an admin writes a note straight into the timeline, as themselves');
select throws_ok(
  $$insert into conversation_timeline (conversation_id, event_type, title, actor_type, actor_id)
    values ('24000000-0000-0000-0000-000000000002', 'note', 'Note', 'agent', 'someone else')$$,
  '42501', null, 'but not as someone else');

select is(admin_assign('24000000-0000-0000-0000-000000000002', '24aaaaaa-0000-0000-0000-000000000001'), true,
  'an admin assigns a lead');
create temp table task as
select admin_schedule_follow_up('24000000-0000-0000-0000-000000000002', now() + interval '1 day', null, 'Send the floor plan') as id;
select is(admin_complete_follow_up((select id from task)), true, 'an admin completes a follow-up');
select throws_ok($$select admin_cancel_follow_up((select id from task))$$, 'PT409', null,
  'a completed follow-up cannot be cancelled (409 through PostgREST)');

select is(admin_replay_event((select id from lead_events where conversation_id = '24000000-0000-0000-0000-000000000001'
                                and event_type = 'lead.created')), 1,
  'an admin replays a failed delivery through the RPC');
select results_eq(
  $$select status::text, attempts from notification_logs where conversation_id = '24000000-0000-0000-0000-000000000001'$$,
  $$values ('pending', 0)$$,
  'the delivery is pending again with a fresh set of attempts');

-- Every action on the second lead is on its timeline, by the admin.
select results_eq(
  $$select event_type::text, actor_id, metadata ->> 'actor_email'
      from conversation_timeline
     where conversation_id = '24000000-0000-0000-0000-000000000002' and actor_type = 'agent'
     order by created_at, event_type::text, title$$,
  $$values ('assigned', '24aaaaaa-0000-0000-0000-000000000001', 'admin@truenester.com'),
           ('first_response', '24aaaaaa-0000-0000-0000-000000000001', null),
           ('followup_completed', '24aaaaaa-0000-0000-0000-000000000001', 'admin@truenester.com'),
           ('followup_scheduled', '24aaaaaa-0000-0000-0000-000000000001', 'admin@truenester.com'),
           ('message', '24aaaaaa-0000-0000-0000-000000000001', 'admin@truenester.com'),
           ('note', '24aaaaaa-0000-0000-0000-000000000001', null)$$,
  'assignment, answer, first response, follow-up scheduled and completed, note: each names the admin');
reset role;

-- The service names its actor in settings (the console's "admin key").
set local request.jwt.claims = '';
select set_config('leadrelay.actor_id', 'admin key', true);
select is(admin_set_status('24000000-0000-0000-0000-000000000002', 'qualified'), true, 'the service changes a status');
select results_eq(
  $$select actor_type::text, actor_id from conversation_timeline
     where conversation_id = '24000000-0000-0000-0000-000000000002' and event_type = 'status_changed'$$,
  $$values ('agent', 'admin key')$$,
  'the service''s change names whom it acted for');

select * from finish();
rollback;

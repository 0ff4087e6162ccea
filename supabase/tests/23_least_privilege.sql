-- Least privilege (issue 11): every privilege anon and authenticated hold in public, listed and
-- compared with the set the API needs (supabase/migrations/20261129040000_least_privilege.sql).
-- A new table, function or grant that an API role can use fails this test until it is added
-- to the intended set below, on purpose.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(17);

create temp view api_privileges as
with roles(r) as (values ('anon'), ('authenticated')),
rels as (
  select c.oid, c.relname, c.relkind from pg_class c
   where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
)
select r as role, case relkind when 'S' then 'sequence' else 'table' end as kind, relname::text as object, p as privilege
  from roles, rels,
       unnest(case when relkind = 'S' then array['usage', 'select', 'update']
                   else array['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger'] end) p
 where case when relkind = 'S' then has_sequence_privilege(r, oid, p) else has_table_privilege(r, oid, p) end
union all
-- Column grants, where the table-wide privilege is not held.
select r, 'column', c.relname || '.' || a.attname, p
  from roles, rels c
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped,
       unnest(array['select', 'insert', 'update', 'references']) p
 where c.relkind <> 'S' and has_column_privilege(r, c.oid, a.attnum, p) and not has_table_privilege(r, c.oid, p)
union all
select r, 'function', p.oid::regprocedure::text, 'execute'
  from roles, pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
   and has_function_privilege(r, p.oid, 'execute')
union all
select r, 'schema', 'public', p
  from roles, unnest(array['usage', 'create']) p
 where has_schema_privilege(r, 'public', p);
grant select on api_privileges to public;

select set_eq(
  $$select role, kind, object, privilege from api_privileges$$,
  $$values
    ('anon', 'schema', 'public', 'usage'),
    ('anon', 'function', 'submit_lead(jsonb)', 'execute'),
    ('authenticated', 'schema', 'public', 'usage'),
    ('authenticated', 'function', 'submit_lead(jsonb)', 'execute'),
    ('authenticated', 'table', 'sla_policies', 'select'),
    ('authenticated', 'table', 'conversations', 'select'),
    ('authenticated', 'table', 'chat_messages', 'select'),
    ('authenticated', 'table', 'follow_up_tasks', 'select'),
    ('authenticated', 'table', 'lead_events', 'select'),
    ('authenticated', 'table', 'conversation_timeline', 'select'),
    ('authenticated', 'table', 'notification_logs', 'select'),
    ('authenticated', 'table', 'notification_routes', 'select'),
    ('authenticated', 'table', 'leader_leases', 'select'),
    ('authenticated', 'table', 'sla_lead_outcomes', 'select'),
    ('authenticated', 'table', 'sla_daily_summary', 'select'),
    ('authenticated', 'column', 'conversations.status', 'update'),
    ('authenticated', 'column', 'conversations.quality', 'update'),
    ('authenticated', 'column', 'conversations.assigned_to', 'update'),
    ('authenticated', 'column', 'follow_up_tasks.conversation_id', 'insert'),
    ('authenticated', 'column', 'follow_up_tasks.follow_up_date', 'insert'),
    ('authenticated', 'column', 'follow_up_tasks.sla_deadline', 'insert'),
    ('authenticated', 'column', 'follow_up_tasks.assigned_to', 'insert'),
    ('authenticated', 'column', 'follow_up_tasks.notes', 'insert'),
    ('authenticated', 'column', 'follow_up_tasks.status', 'update'),
    ('authenticated', 'column', 'follow_up_tasks.follow_up_date', 'update'),
    ('authenticated', 'column', 'follow_up_tasks.sla_deadline', 'update'),
    ('authenticated', 'column', 'follow_up_tasks.assigned_to', 'update'),
    ('authenticated', 'column', 'follow_up_tasks.notes', 'update'),
    -- The console's twin through PostgREST (20261129050000_console.sql, 80_console.sql): a note
    -- or an agent's answer written as oneself, and the admin's functions.
    ('authenticated', 'column', 'conversation_timeline.conversation_id', 'insert'),
    ('authenticated', 'column', 'conversation_timeline.event_type', 'insert'),
    ('authenticated', 'column', 'conversation_timeline.title', 'insert'),
    ('authenticated', 'column', 'conversation_timeline.description', 'insert'),
    ('authenticated', 'column', 'conversation_timeline.actor_type', 'insert'),
    ('authenticated', 'column', 'conversation_timeline.actor_id', 'insert'),
    ('authenticated', 'column', 'conversation_timeline.metadata', 'insert'),
    ('authenticated', 'column', 'chat_messages.conversation_id', 'insert'),
    ('authenticated', 'column', 'chat_messages.sender_type', 'insert'),
    ('authenticated', 'column', 'chat_messages.sender_id', 'insert'),
    ('authenticated', 'column', 'chat_messages.content', 'insert'),
    ('authenticated', 'function', 'admin_check()', 'execute'),
    ('authenticated', 'function', 'admin_actor()', 'execute'),
    ('authenticated', 'function', 'admin_actor_metadata()', 'execute'),
    ('authenticated', 'function', 'admin_lead_exists(uuid)', 'execute'),
    ('authenticated', 'function', 'admin_set_status(uuid,conversation_status)', 'execute'),
    ('authenticated', 'function', 'admin_mark_contacted(uuid)', 'execute'),
    ('authenticated', 'function', 'admin_set_quality(uuid,lead_quality)', 'execute'),
    ('authenticated', 'function', 'admin_assign(uuid,uuid)', 'execute'),
    ('authenticated', 'function', 'admin_add_note(uuid,text)', 'execute'),
    ('authenticated', 'function', 'admin_reply(uuid,text)', 'execute'),
    ('authenticated', 'function', 'admin_schedule_follow_up(uuid,timestamp with time zone,timestamp with time zone,text,uuid)', 'execute'),
    ('authenticated', 'function', 'admin_close_follow_up(uuid,follow_up_status)', 'execute'),
    ('authenticated', 'function', 'admin_complete_follow_up(uuid)', 'execute'),
    ('authenticated', 'function', 'admin_cancel_follow_up(uuid)', 'execute'),
    ('authenticated', 'function', 'admin_replay_event(uuid)', 'execute'),
    ('authenticated', 'function', 'admin_replay_failed(notification_channel)', 'execute')
  $$,
  'anon and authenticated hold exactly the privileges the API uses'
);

select is_empty(
  $$select object from api_privileges where kind = 'sequence'$$,
  'no API role may use, read or set a sequence'
);

-- A lead to act on, and the sequence the issue's attack moved.
insert into conversations (id, form, email) values ('23000000-0000-0000-0000-000000000001', 'contact_form', 'lp@example.com');
insert into follow_up_tasks (id, conversation_id, follow_up_date, sla_deadline)
values ('23000000-0000-0000-0000-0000000000f1', '23000000-0000-0000-0000-000000000001', now() + interval '1 day', now() + interval '2 days');

set local role anon;
set local request.jwt.claims = '{"role": "anon"}';
select throws_ok(
  $$select setval('public.chat_messages_seq_seq', 9223372036854775807)$$,
  '42501', null, 'anon cannot move the chat_messages sequence'
);
select throws_ok($$select nextval('public.chat_messages_seq_seq')$$, '42501', null, 'anon cannot draw from it either');
select throws_ok($$select count(*) from conversations$$, '42501', null, 'anon holds no privilege on a lead, not even one RLS would empty');
select lives_ok(
  $$select public.submit_lead('{"form": "chatbot", "email": "anon-lp@example.com", "messages": [{"role": "user", "content": "hi"}]}')$$,
  'anon still submits a lead with its messages'
);
reset role;

-- An admin: what a person decides, and nothing of the pipeline's bookkeeping.
set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000023", "role": "authenticated",
  "app_metadata": {"role": "admin"}}';
select throws_ok(
  $$update follow_up_tasks set due_notified_at = now() where id = '23000000-0000-0000-0000-0000000000f1'$$,
  '42501', null, 'an admin cannot mark a follow-up as already announced (due_notified_at)'
);
select throws_ok(
  $$update follow_up_tasks set sla_breached = true, overdue_at = now() where id = '23000000-0000-0000-0000-0000000000f1'$$,
  '42501', null, 'an admin cannot set a follow-up''s overdue bookkeeping'
);
select throws_ok(
  $$update conversations set sla_breached = true, sla_breached_at = now() where id = '23000000-0000-0000-0000-000000000001'$$,
  '42501', null, 'an admin cannot set a lead''s SLA breach'
);
select throws_ok(
  $$update conversations set sla_warning_sent_at = now() where id = '23000000-0000-0000-0000-000000000001'$$,
  '42501', null, 'an admin cannot silence a lead''s SLA warning'
);
select lives_ok(
  $$update follow_up_tasks set status = 'completed', notes = 'Called back', assigned_to = 'aaaaaaaa-0000-0000-0000-000000000023',
           follow_up_date = now() + interval '3 days', sla_deadline = now() + interval '4 days'
     where id = '23000000-0000-0000-0000-0000000000f1'$$,
  'an admin completes, reschedules, assigns and annotates a follow-up'
);
select throws_ok(
  $$insert into follow_up_tasks (conversation_id, follow_up_date) values ('23000000-0000-0000-0000-000000000001', 'infinity')$$,
  '23514', null, 'a follow-up at infinity is refused'
);
select throws_ok(
  $$insert into follow_up_tasks (conversation_id, follow_up_date) values ('23000000-0000-0000-0000-000000000001', '4714-11-24 00:00:00+00 BC')$$,
  '23514', null, 'a follow-up in 4714 BC is refused'
);
select throws_ok(
  $$update follow_up_tasks set sla_deadline = 'infinity' where id = '23000000-0000-0000-0000-0000000000f1'$$,
  '23514', null, 'a follow-up deadline at infinity is refused'
);
select throws_ok(
  $$insert into follow_up_tasks (conversation_id, follow_up_date, due_notified_at) values ('23000000-0000-0000-0000-000000000001', now(), now())$$,
  '42501', null, 'an admin cannot create a follow-up already announced'
);
reset role;

-- Message times a visitor gives: finite and in this century.
select throws_ok(
  $$select public.submit_lead('{"form": "chatbot", "email": "at@example.com", "messages": [{"role": "user", "content": "a", "at": "infinity"}, {"role": "user", "content": "b", "at": "4714-11-24T00:00:00Z BC"}]}')$$,
  '22023', 'invalid lead', 'submit_lead refuses message times at infinity and in 4714 BC'
);
select throws_ok(
  $$insert into chat_messages (conversation_id, sender_type, content, sent_at) values ('23000000-0000-0000-0000-000000000001', 'agent', 'x', '-infinity')$$,
  '23514', null, 'no message is stored at -infinity, whoever writes it'
);

select * from finish();
rollback;

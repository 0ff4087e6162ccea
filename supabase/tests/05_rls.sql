-- Row-level security as each role sees it, the way PostgREST runs a query:
-- set local role ...; set local request.jwt.claims = '...'.
-- The API roles hold only the privileges the API uses (23_least_privilege.sql); where
-- authenticated holds one, these tests prove that the policies keep non-admins out.
-- The per-table tests cover every table in public, including ones added later.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(12 + 12 * (select count(*)::int from pg_tables where schemaname = 'public'));

-- Rows in a table, as the current role sees them; none when it may not read the table at all.
create function pg_temp.visible_rows(t regclass) returns bigint
language plpgsql as $$
declare
  n bigint;
begin
  execute format('select count(*) from %s', t) into n;
  return n;
exception when insufficient_privilege then
  return 0;
end
$$;

-- Rows a statement changed as the current role; a statement the role may not run changes none.
create function pg_temp.rows_changed(statement text) returns bigint
language plpgsql as $$
declare
  n bigint;
begin
  execute statement;
  get diagnostics n = row_count;
  return n;
exception when insufficient_privilege then
  return 0;
end
$$;

-- A lead with something in every table.
insert into conversations (id, form, email, phone, property_id, timeline) values
  ('50000000-0000-0000-0000-000000000001', 'property_inquiry', 'rls@example.com', '+971501234567', 'prop-1', 'asap');
insert into chat_messages (conversation_id, sender_type, content) values
  ('50000000-0000-0000-0000-000000000001', 'customer', 'Is it available?');
insert into follow_up_tasks (conversation_id, follow_up_date) values
  ('50000000-0000-0000-0000-000000000001', now() + interval '1 day');
insert into notification_logs (lead_event_id, conversation_id, channel)
select id, conversation_id, 'slack' from lead_events where conversation_id = '50000000-0000-0000-0000-000000000001';

create temp table table_rows as
select c.oid::regclass as tbl,
       (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum limit 1) as first_column,
       pg_temp.visible_rows(c.oid::regclass) as n
  from pg_class c
 where c.relnamespace = 'public'::regnamespace and c.relkind = 'r';
grant select on table_rows to public;

select ok(n > 0, format('%s has a row to hide', tbl)) from table_rows;

-- Least privilege (23_least_privilege.sql lists every grant): anon holds nothing on a table, and
-- for what authenticated holds, the policies below decide.
select ok(
  not has_table_privilege('anon', tbl, 'select, insert, update, delete, truncate, references, trigger'),
  format('anon holds no privilege on %s', tbl))
  from table_rows;

select ok(
  not has_table_privilege('authenticated', 'public.conversations', 'insert')
  and not has_table_privilege('authenticated', 'public.conversations', 'delete')
  and not has_table_privilege('authenticated', 'public.lead_events', 'update')
  and has_table_privilege('authenticated', 'public.follow_up_tasks', 'select'),
  'authenticated holds what admins use, not what the pipeline writes'
);

-- anon: nothing at all.
set local role anon;
set local request.jwt.claims = '{"role": "anon"}';

select is(pg_temp.visible_rows(tbl), 0::bigint, format('anon reads nothing from %s', tbl)) from table_rows;
select throws_ok(format('insert into %s default values', tbl), '42501', null, format('anon cannot insert into %s', tbl))
  from table_rows;
select is(pg_temp.rows_changed(format('update %s set %I = %I', tbl, first_column, first_column)), 0::bigint,
          format('anon updates nothing in %s', tbl))
  from table_rows;
select is(pg_temp.rows_changed(format('delete from %s', tbl)), 0::bigint, format('anon deletes nothing from %s', tbl))
  from table_rows;

reset role;

-- A signed-in user who is not an admin, even one whose user_metadata (which users can edit
-- themselves) claims to be: nothing.
set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000002", "role": "authenticated",
  "app_metadata": {"provider": "email"}, "user_metadata": {"role": "admin"}}';

select is(pg_temp.visible_rows(tbl), 0::bigint, format('a non-admin reads nothing from %s', tbl)) from table_rows;
select throws_ok(format('insert into %s default values', tbl), '42501', null, format('a non-admin cannot insert into %s', tbl))
  from table_rows;
select is(pg_temp.rows_changed(format('update %s set %I = %I', tbl, first_column, first_column)), 0::bigint,
          format('a non-admin updates nothing in %s', tbl))
  from table_rows;
select is(pg_temp.rows_changed(format('delete from %s', tbl)), 0::bigint, format('a non-admin deletes nothing from %s', tbl))
  from table_rows;
select is(
  pg_temp.rows_changed($$update conversations set status = 'closed'$$), 0::bigint,
  'a non-admin cannot change a status, though the column is granted'
);

reset role;

select is_empty(
  $$select tbl from table_rows where pg_temp.visible_rows(tbl) <> n$$,
  'anon and the non-admin changed no table'
);

-- An admin: reads everything; changes a status, quality, assignee; manages follow-ups.
set local role authenticated;
set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000001", "role": "authenticated",
  "app_metadata": {"provider": "email", "role": "admin"}}';

select is(pg_temp.visible_rows(tbl), n, format('an admin reads every row of %s', tbl)) from table_rows;

select is(
  pg_temp.rows_changed($$update conversations set status = 'contacted', quality = 'warm',
      assigned_to = 'aaaaaaaa-0000-0000-0000-000000000001' where id = '50000000-0000-0000-0000-000000000001'$$),
  1::bigint, 'an admin changes a lead''s status, quality and assignee'
);
select results_eq(
  $$select actor_type::text, actor_id from conversation_timeline
     where conversation_id = '50000000-0000-0000-0000-000000000001' and event_type = 'status_changed'$$,
  $$values ('agent', 'aaaaaaaa-0000-0000-0000-000000000001')$$,
  'the admin''s status change is on the timeline as theirs'
);
select throws_ok(
  $$update conversations set lead_score = 99 where id = '50000000-0000-0000-0000-000000000001'$$,
  '42501', null, 'an admin cannot change a lead''s score'
);
select throws_ok(
  $$update conversations set sla_breached = false, sla_breached_at = null where id = '50000000-0000-0000-0000-000000000001'$$,
  '42501', null, 'an admin cannot clear an SLA breach'
);
select lives_ok(
  $$insert into follow_up_tasks (conversation_id, follow_up_date, notes)
    values ('50000000-0000-0000-0000-000000000001', now() + interval '2 days', 'Call back')$$,
  'an admin creates a follow-up task'
);
select is(
  pg_temp.rows_changed($$update follow_up_tasks set status = 'completed' where conversation_id = '50000000-0000-0000-0000-000000000001'$$),
  2::bigint, 'an admin completes follow-up tasks'
);
select is(
  pg_temp.rows_changed($$delete from conversations$$), 0::bigint,
  'an admin deletes no lead'
);
select throws_ok(
  $$insert into lead_events (event_type, conversation_id, idempotency_key)
    values ('lead.updated', '50000000-0000-0000-0000-000000000001', 'forged')$$,
  '42501', null, 'an admin cannot forge an outbox event'
);

reset role;

-- The service role bypasses row-level security.
set local role service_role;
set local request.jwt.claims = '{"role": "service_role"}';

select cmp_ok(pg_temp.visible_rows(tbl), '>=', n, format('service_role reads every row of %s', tbl)) from table_rows;
select is(
  pg_temp.rows_changed($$update conversations set lead_score = 99 where id = '50000000-0000-0000-0000-000000000001'$$),
  1::bigint, 'service_role writes what admins may not'
);

reset role;

select * from finish();
rollback;

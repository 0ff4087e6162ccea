-- The database's interface beyond the rows: row-level security switched on everywhere, the
-- realtime publication, fixed search paths, and who may execute which function.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(15);

select is_empty(
  $$select relname from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') and not relrowsecurity$$,
  'every table in public has row-level security enabled'
);

select is_empty(
  $$select c.relname from pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
       and (has_table_privilege('anon', c.oid, 'truncate') or has_table_privilege('authenticated', c.oid, 'truncate'))$$,
  'no API role may truncate a table (TRUNCATE ignores row-level security)'
);

select set_has(
  $$select tablename::text from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'public'$$,
  $$values ('conversations'), ('chat_messages'), ('lead_events'), ('conversation_timeline'), ('follow_up_tasks'), ('notification_logs')$$,
  'the admin panel''s tables are in the supabase_realtime publication'
);

select set_eq(
  $$select relname::text from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r' and relreplident = 'f'$$,
  $$values ('conversations'), ('follow_up_tasks')$$,
  'only the tables whose update events the panel compares old with new have a full replica identity'
);

-- Functions of ours: in public, not part of an extension.
create temp view our_functions as
select p.oid, p.oid::regprocedure::text as signature, p.prosecdef, p.proconfig, p.proacl
  from pg_proc p
 where p.pronamespace = 'public'::regnamespace
   and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e');

select is_empty(
  $$select signature from our_functions
     where not exists (select from unnest(coalesce(proconfig, '{}')) c where c like 'search_path=%')$$,
  'every function in public fixes its search_path'
);

select is_empty(
  $$select signature from our_functions
     where not exists (select from unnest(coalesce(proconfig, '{}')) c where c = 'search_path=""')$$,
  'every function in public runs with an empty search_path (names are qualified)'
);

select set_eq(
  $$select signature from our_functions where prosecdef$$,
  $$values ('submit_lead(jsonb)'), ('conversations_before_insert()'), ('conversations_before_update()'),
           ('conversations_after_insert()'), ('conversations_after_update()'),
           ('chat_messages_after_insert()'), ('lead_events_doorbell()'),
           ('conversations_after_assign()'), ('follow_up_tasks_after_write()'),
           ('conversation_timeline_console_doorbell()'),
           ('row_rules()'),
           ('admin_replay_event(uuid)'), ('admin_replay_failed(notification_channel)'),
           ('announce_replica(text,notification_channel[],timestamp with time zone)'),
           ('live_channels(notification_channel[],timestamp with time zone)'),
           ('live_replicas(timestamp with time zone,integer)')$$,
  'the security-definer functions are the intake, the triggers that write or check rows for their caller, the admin''s replays, and the replicas'' channels and list (a private table)'
);

select set_eq(
  $$select signature from our_functions where has_function_privilege('anon', oid, 'execute')$$,
  $$values ('submit_lead(jsonb)')$$,
  'anon may execute submit_lead and no other function'
);

select set_eq(
  $$select signature from our_functions where has_function_privilege('authenticated', oid, 'execute')$$,
  $$values ('submit_lead(jsonb)'),
           ('admin_check()'), ('admin_actor()'), ('admin_actor_metadata()'), ('admin_lead_exists(uuid)'),
           ('admin_set_status(uuid,conversation_status)'), ('admin_mark_contacted(uuid)'),
           ('admin_set_quality(uuid,lead_quality)'), ('admin_assign(uuid,uuid)'),
           ('admin_add_note(uuid,text)'), ('admin_reply(uuid,text)'),
           ('admin_schedule_follow_up(uuid,timestamp with time zone,timestamp with time zone,text,uuid)'),
           ('admin_close_follow_up(uuid,follow_up_status)'), ('admin_complete_follow_up(uuid)'),
           ('admin_cancel_follow_up(uuid)'), ('admin_replay_event(uuid)'), ('admin_replay_failed(notification_channel)')$$,
  'authenticated may execute submit_lead and the admin''s functions (each checks the admin role), no other'
);

-- A function created without a grant list (proacl null) is executable by PUBLIC.
select is_empty(
  $$select signature from our_functions
     where proacl is null or exists (select from aclexplode(proacl) a where a.grantee = 0 and a.privilege_type = 'EXECUTE')$$,
  'no function in public is executable by PUBLIC'
);

select set_eq(
  $$select a.attname::text from pg_attribute a
     where a.attrelid = 'public.conversations'::regclass and a.attnum > 0 and not a.attisdropped
       and has_column_privilege('authenticated', 'public.conversations', a.attname, 'update')$$,
  $$values ('status'), ('quality'), ('assigned_to')$$,
  'of a lead, authenticated may update only status, quality and assigned_to'
);

select ok(
  not has_table_privilege('anon', 'public.conversations', 'update'),
  'anon may not update a lead, whatever the policies'
);

select ok(
  (select rolbypassrls from pg_roles where rolname = 'service_role'),
  'service_role bypasses row-level security'
);

select ok(
  to_regprocedure('auth.jwt()') is not null
  and to_regprocedure('auth.uid()') is not null
  and to_regprocedure('auth.role()') is not null,
  'auth.jwt(), auth.uid() and auth.role() exist'
);

set local request.jwt.claims = '{"sub": "aaaaaaaa-0000-0000-0000-000000000009", "role": "authenticated", "app_metadata": {"role": "admin"}}';
select results_eq(
  $$select auth.uid(), auth.role(), auth.jwt() -> 'app_metadata' ->> 'role'$$,
  $$values ('aaaaaaaa-0000-0000-0000-000000000009'::uuid, 'authenticated', 'admin')$$,
  'auth.uid(), auth.role() and auth.jwt() read the claims PostgREST sets'
);

select * from finish();
rollback;

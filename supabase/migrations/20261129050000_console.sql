-- The admin console (/admin) and its PostgREST twin: timeline kinds for the console's
-- actions, the search and keyset indexes of the leads list, the console's sessions, and the
-- row-level security that lets an admin write a note or an agent reply as themselves. The
-- functions live in supabase/functions-sql/80_console.sql.

-- Timeline entries of the admin's actions that had no kind of their own.
alter type public.timeline_event_type add value if not exists 'assigned';
alter type public.timeline_event_type add value if not exists 'followup_scheduled';
alter type public.timeline_event_type add value if not exists 'followup_completed';
alter type public.timeline_event_type add value if not exists 'followup_cancelled';

-- The leads list: newest first, keyset-paginated on (created_at, id), so page 5,000 costs
-- what page 1 costs.
create index conversations_created_at_id_idx on public.conversations (created_at desc, id desc);
create index conversations_quality_created_at_idx on public.conversations (quality, created_at desc, id desc);
create index conversations_source_created_at_idx on public.conversations (source, created_at desc, id desc);

-- A lead's page lists the same person's other leads: the same email (any case) or phone.
create index conversations_lower_email_idx on public.conversations (lower(email)) where email is not null;
create index conversations_phone_idx on public.conversations (phone) where phone is not null;

-- Searching by a piece of a name, email or phone: trigram matching of one text that holds
-- all three (the same expression as in public.admin_lead_search_text).
create extension if not exists pg_trgm with schema extensions;
create index conversations_search_idx on public.conversations
  using gin ((lower(coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))) extensions.gin_trgm_ops);

-- The console's poll when LISTEN is off: timeline entries since a time.
create index conversation_timeline_created_at_idx on public.conversation_timeline (created_at);

-- The deliveries page: failed and pending deliveries across leads, newest first.
create index notification_logs_open_idx on public.notification_logs (updated_at desc)
  where status in ('failed', 'pending');

-- The console's sign-in sessions. Only the SHA-256 of a session's token is kept, so a
-- reader of this table cannot sign in. Not in an exposed schema: no API role sees it.
create table leadrelay_private.console_sessions (
  token_hash bytea primary key,
  csrf_token text not null,
  actor_kind text not null,
  actor_id text not null,
  actor_email text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint console_sessions_actor_kind_check check (actor_kind in ('admin_key', 'supabase')),
  constraint console_sessions_expiry_check check (expires_at > created_at)
);

create index console_sessions_expires_at_idx on leadrelay_private.console_sessions (expires_at);

revoke all on leadrelay_private.console_sessions from public, anon, authenticated, service_role;

-- An admin writes a note, or answers the customer, as themselves: the row must name them.
-- (The functions in 80_console.sql fill these rows in; supabase-js may insert them directly.)
-- The columns a person writes; ids, times and sequence numbers come from their defaults.
grant insert (conversation_id, event_type, title, description, actor_type, actor_id, metadata)
  on public.conversation_timeline to authenticated;
grant insert (conversation_id, sender_type, sender_id, content) on public.chat_messages to authenticated;

create policy "admins write notes as themselves" on public.conversation_timeline
  for insert to authenticated
  with check (
    ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin'
    and event_type = 'note'
    and actor_type = 'agent'
    and actor_id = (select auth.uid())::text
  );

create policy "admins answer as themselves" on public.chat_messages
  for insert to authenticated
  with check (
    ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin'
    and sender_type = 'agent'
    and sender_id = (select auth.uid())::text
  );

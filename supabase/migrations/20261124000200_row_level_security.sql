-- Who sees what through the API (DESIGN.md "Row-level security"). Under Supabase's default
-- privileges anon and authenticated hold privileges on every table in public, so these
-- policies are what keeps them out:
--   anon               nothing (no policy); it may only call submit_lead.
--   authenticated      nothing, unless the JWT says app_metadata.role = 'admin': then it reads
--                      every table, updates a lead's status, quality and assignee, and
--                      creates and updates follow-up tasks. Nobody deletes through the API.
--   service_role       bypasses row-level security (the Go service's role).
-- app_metadata is only writable by the service, unlike user_metadata. The auth.jwt() call is
-- wrapped in (select ...) so Postgres evaluates it once per statement, not once per row.

alter table public.sla_policies enable row level security;
alter table public.conversations enable row level security;
alter table public.chat_messages enable row level security;
alter table public.follow_up_tasks enable row level security;
alter table public.lead_events enable row level security;
alter table public.conversation_timeline enable row level security;
alter table public.notification_logs enable row level security;

create policy "admins read sla policies" on public.sla_policies
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins read conversations" on public.conversations
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins update conversations" on public.conversations
  for update to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin')
  with check (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins read chat messages" on public.chat_messages
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins read follow-up tasks" on public.follow_up_tasks
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins create follow-up tasks" on public.follow_up_tasks
  for insert to authenticated
  with check (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins update follow-up tasks" on public.follow_up_tasks
  for update to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin')
  with check (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins read lead events" on public.lead_events
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins read the timeline" on public.conversation_timeline
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

create policy "admins read notification logs" on public.notification_logs
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

-- An admin changes a lead's status, quality and assignee, nothing else: the score, the SLA
-- columns and the contact details belong to the pipeline.
revoke update on public.conversations from anon, authenticated;
grant update (status, quality, assigned_to) on public.conversations to authenticated;

-- TRUNCATE is not subject to row-level security; no API role needs it (nor REFERENCES or
-- TRIGGER, which the default privileges also hand out).
revoke truncate, references, trigger on
  public.sla_policies,
  public.conversations,
  public.chat_messages,
  public.follow_up_tasks,
  public.lead_events,
  public.conversation_timeline,
  public.notification_logs
from anon, authenticated;

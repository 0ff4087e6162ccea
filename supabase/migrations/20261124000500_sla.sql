-- The SLA engine's tables, indexes and the admin panel's SLA figures. The engine's functions
-- live in supabase/functions-sql/70_sla.sql.

-- One row per job that exactly one replica may run at a time (the SLA and follow-up jobs run
-- under 'sla'). A replica holds the row until expires_at, by the database's clock, and renews
-- it well before then; when it dies another takes the row once it has expired. token goes up
-- by one at every change of holder: a job's transaction checks (holder, token) and locks the
-- row, so a replica that lost the lease can never run a job beside its successor.
create table public.leader_leases (
  name text primary key,
  holder text,
  token bigint not null default 0,
  acquired_at timestamptz,
  renewed_at timestamptz,
  expires_at timestamptz not null default '-infinity',
  constraint leader_leases_name_check check (char_length(name) between 1 and 100),
  constraint leader_leases_holder_check check (char_length(holder) between 1 and 200),
  constraint leader_leases_token_check check (token >= 0)
);

insert into public.leader_leases (name) values ('sla');

alter table public.leader_leases enable row level security;

-- The admin panel may show who runs the SLA jobs; nobody changes a lease through the API.
create policy "admins read leader leases" on public.leader_leases
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

revoke insert, update, delete, truncate, references, trigger on public.leader_leases from anon, authenticated;

-- The SLA alerts list (GET /admin/sla/alerts): open, unanswered leads by deadline, breached
-- ones included (the engine's due indexes drop a lead once it is warned or breached).
create index conversations_sla_open_idx on public.conversations (sla_response_deadline)
  where first_response_at is null and status not in ('closed', 'spam');

-- The daily SLA figures filtered by day (a UTC date), as the admin panel asks for them.
create index conversations_created_day_idx on public.conversations (((created_at at time zone 'UTC')::date));

-- The SLA outcome of each lead: the one definition of "answered in time" and "breached" that
-- the daily view and the period summary (public.sla_summary) count. A lead marked spam is no
-- lead. A lead is answered in time when its first human answer came by its deadline and the
-- engine never declared it breached (a lead re-scored after its breach keeps the breach);
-- it is breached when the engine declared it or the answer came late. security_invoker: the
-- reader's row-level security applies, so through PostgREST only admins see rows.
create view public.sla_lead_outcomes
with (security_invoker = true)
as
select c.id as conversation_id,
       c.created_at,
       (c.created_at at time zone 'UTC')::date as day,
       c.quality,
       c.source,
       c.form,
       c.status,
       c.sla_response_deadline,
       c.first_response_at,
       c.first_response_at - c.created_at as time_to_first_response,
       coalesce(c.first_response_at <= c.sla_response_deadline and not c.sla_breached, false) as answered_in_time,
       c.sla_breached or coalesce(c.first_response_at > c.sla_response_deadline, false) as breached
  from public.conversations c
 where c.status <> 'spam';

-- The admin panel's SLA figures per UTC day, lead quality and source. A view takes no
-- parameters, so the period is a filter on day (PostgREST: ?day=gte.2026-11-01&day=lt.2026-12-01),
-- which Postgres applies before grouping. Counts add up over days; a median or p90 does not,
-- so the exact figures of a whole period come from public.sla_summary (GET /admin/sla/summary).
create view public.sla_daily_summary
with (security_invoker = true)
as
select o.day,
       o.quality,
       o.source,
       count(*) as leads,
       count(o.first_response_at) as answered,
       count(*) filter (where o.answered_in_time) as answered_in_time,
       count(*) filter (where o.breached) as breached,
       percentile_cont(0.5) within group (order by extract(epoch from o.time_to_first_response)) as median_first_response_seconds,
       percentile_cont(0.9) within group (order by extract(epoch from o.time_to_first_response)) as p90_first_response_seconds
  from public.sla_lead_outcomes o
 group by o.day, o.quality, o.source;

-- Read-only, and only through row-level security (anon has no policy, so it reads nothing
-- either way; it needs no privilege at all).
revoke all on public.sla_lead_outcomes, public.sla_daily_summary from anon;
revoke insert, update, delete, truncate, references, trigger on public.sla_lead_outcomes, public.sla_daily_summary from authenticated;
grant select on public.sla_lead_outcomes, public.sla_daily_summary to authenticated, service_role;

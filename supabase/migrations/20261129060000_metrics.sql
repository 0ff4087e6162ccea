-- What the metrics endpoint and `leadrelay status` read, so that a scrape costs the same at
-- any table size.
--
-- SLA warnings and breaches are counted as they happen (by a trigger in
-- supabase/functions-sql/90_metrics.sql), with the definition of public.sla_lead_outcomes:
-- a lead is breached when the engine declared it or its first answer came after the
-- deadline; spam is no lead. Each counter is spread over slot rows that writers take with
-- SKIP LOCKED, so no writer waits on another's open transaction; a reader sums the slots.
create table leadrelay_private.metric_counters (
  name text not null,
  slot smallint not null,
  value bigint not null default 0,
  primary key (name, slot),
  constraint metric_counters_name_check check (name in ('sla_warnings', 'sla_breaches')),
  constraint metric_counters_value_check check (value >= 0)
);

revoke all on leadrelay_private.metric_counters from public, anon, authenticated, service_role;

-- The counters start from what the database already holds.
insert into leadrelay_private.metric_counters (name, slot, value)
select 'sla_warnings', 0, count(*) from public.conversations
 where sla_warning_sent_at is not null and status <> 'spam'
union all
select 'sla_breaches', 0, count(*) from public.sla_lead_outcomes where breached
union all
select n.name, g::smallint, 0 from (values ('sla_warnings'), ('sla_breaches')) n(name), generate_series(1, 7) g;

-- The oldest waiting event, read without scanning the backlog.
create index lead_events_waiting_created_idx on public.lead_events (created_at) where not processed;

-- Failed deliveries of the last hour (`leadrelay status`), read without scanning them all.
create index notification_logs_failed_updated_idx on public.notification_logs (updated_at) where status = 'failed';

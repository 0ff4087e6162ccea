-- Counters for the metrics endpoint, kept as things happen (the table and its definition:
-- supabase/migrations/20261129060000_metrics.sql).

-- Adds n to a counter without ever waiting on another transaction: it takes a slot row no
-- other transaction holds (this backend's own first, so a busy transaction keeps to one row),
-- and only when every slot is held, say by a paused SLA leader's open batch, starts a new one.
-- A reader sums the slots, so their number does not matter.
create or replace function leadrelay_private.metric_counter_add(p_name text, p_n bigint)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  free smallint;
begin
  select m.slot into free
    from leadrelay_private.metric_counters m
   where m.name = p_name
   order by m.slot <> (pg_backend_pid() % 8), m.slot
   limit 1
   for update skip locked;
  if free is null then
    insert into leadrelay_private.metric_counters (name, slot, value)
    values (p_name, (8 + floor(random() * 32000))::smallint, p_n)
    on conflict (name, slot) do update set value = leadrelay_private.metric_counters.value + excluded.value;
  else
    update leadrelay_private.metric_counters set value = value + p_n where name = p_name and slot = free;
  end if;
end
$$;

revoke all on function leadrelay_private.metric_counter_add(text, bigint) from public, anon, authenticated, service_role;

-- A lead warned of its deadline counts once; a lead breached by the definition of
-- public.sla_lead_outcomes (declared by the engine, or first answered after the deadline)
-- counts once, when it becomes so. Runs as definer: an admin answering a lead through
-- PostgREST may make it count.
create or replace function leadrelay_private.conversations_count_sla()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if new.status = 'spam' then
    return null;
  end if;
  if old.sla_warning_sent_at is null and new.sla_warning_sent_at is not null then
    perform leadrelay_private.metric_counter_add('sla_warnings', 1);
  end if;
  if (new.sla_breached or coalesce(new.first_response_at > new.sla_response_deadline, false))
     and not (old.sla_breached or coalesce(old.first_response_at > old.sla_response_deadline, false)) then
    perform leadrelay_private.metric_counter_add('sla_breaches', 1);
  end if;
  return null;
end;
$$;

revoke all on function leadrelay_private.conversations_count_sla() from public, anon, authenticated, service_role;

-- The WHEN clause keeps every other update of a lead free of the call. (No column list:
-- first_response_at is often set by a before trigger, which a column list does not see.)
create or replace trigger conversations_count_sla
  after update on public.conversations
  for each row
  when (old.sla_warning_sent_at is distinct from new.sla_warning_sent_at
        or old.sla_breached is distinct from new.sla_breached
        or old.first_response_at is distinct from new.first_response_at)
  execute function leadrelay_private.conversations_count_sla();

-- The figures one scrape reads, each bounded: the waiting events counted up to p_cap (through
-- the partial index of waiting events), the oldest one's age, and the SLA counters.
create or replace function leadrelay_private.metrics_snapshot(p_now timestamptz, p_cap integer)
returns table (events_waiting bigint, oldest_waiting_seconds double precision, sla_warnings bigint, sla_breaches bigint)
language sql
stable
set search_path = ''
as $$
  select (select count(*) from (select 1 from public.lead_events where not processed limit p_cap) w),
         coalesce((select extract(epoch from p_now - min(created_at))::double precision
                     from public.lead_events where not processed), 0),
         coalesce((select sum(value) from leadrelay_private.metric_counters where name = 'sla_warnings'), 0)::bigint,
         coalesce((select sum(value) from leadrelay_private.metric_counters where name = 'sla_breaches'), 0)::bigint;
$$;

revoke all on function leadrelay_private.metrics_snapshot(timestamptz, integer) from public, anon, authenticated, service_role;

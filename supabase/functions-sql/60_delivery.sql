-- The dispatcher's side of the outbox: claim due events under a lease, open one delivery per
-- routed channel, record each attempt's outcome, and finish or reschedule the event. Every
-- step is idempotent, so a doorbell that rings twice, late, or for a finished event changes
-- nothing. Time comes in as p_now so tests choose it.

-- Claims up to p_limit due events for p_worker until p_now + p_lease. SKIP LOCKED lets
-- replicas claim side by side; the lease keeps an event from a second replica until the
-- first finishes it or dies (then the lease runs out and the event is due again).
create or replace function public.claim_lead_events(
  p_worker text,
  p_lease interval,
  p_limit integer,
  p_now timestamptz default now()
)
returns setof public.lead_events
language sql
set search_path = ''
as $$
  with due as (
    select e.id
      from public.lead_events e
     where not e.processed
       and e.available_at <= p_now
       and (e.lease_expires_at is null or e.lease_expires_at <= p_now)
     order by e.available_at
     limit p_limit
       for update skip locked
  )
  update public.lead_events e
     set lease_owner = p_worker,
         lease_expires_at = p_now + p_lease
    from due
   where e.id = due.id
  returning e.*;
$$;

-- Opens the deliveries of claimed events: one notification_logs row per routed channel that
-- the service has configured (p_channels), and returns every pending delivery of those
-- events whose attempt is due.
create or replace function public.start_deliveries(
  p_event_ids uuid[],
  p_channels public.notification_channel[],
  p_now timestamptz default now()
)
returns table (log_id uuid, lead_event_id uuid, channel public.notification_channel, attempts integer)
language sql
set search_path = ''
as $$
  with opened as (
    insert into public.notification_logs (lead_event_id, conversation_id, channel, next_attempt_at)
    select e.id, e.conversation_id, r.channel, p_now
      from public.lead_events e
      join public.notification_routes r on r.event_type = e.event_type
     where e.id = any (p_event_ids)
       and r.channel = any (p_channels)
    on conflict (lead_event_id, channel) do nothing
    returning id, lead_event_id, channel, attempts
  )
  select o.id, o.lead_event_id, o.channel, o.attempts from opened o
  union all
  -- The statement's snapshot does not see the rows inserted above: no delivery twice.
  select l.id, l.lead_event_id, l.channel, l.attempts
    from public.notification_logs l
   where l.lead_event_id = any (p_event_ids)
     and l.status = 'pending'
     and coalesce(l.next_attempt_at, p_now) <= p_now;
$$;

-- The name a person reads for a channel.
create or replace function public.channel_title(p_channel public.notification_channel)
returns text
language sql
immutable
set search_path = ''
as $$
  select case p_channel
    when 'slack' then 'Slack'
    when 'email' then 'Email'
    when 'telegram' then 'Telegram'
    when 'whatsapp' then 'WhatsApp'
    when 'sms' then 'SMS'
    when 'crm' then 'CRM'
  end;
$$;

-- Records one round of attempts and finishes the worker's events. p_outcomes is a JSON array
-- of {log_id, status: sent|failed|pending, error, response, next_attempt_at}: 'pending' means
-- a transient failure with a retry at next_attempt_at. A delivery that reached its end gets
-- a timeline entry. An event whose deliveries have all ended is processed; otherwise it is
-- due again at its earliest retry. Events the worker no longer leases are left alone.
-- Returns the number of events processed.
create or replace function public.finish_deliveries(
  p_worker text,
  p_event_ids uuid[],
  p_outcomes jsonb,
  p_now timestamptz default now()
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  processed_count integer;
begin
  with outcome as (
    select o.log_id, o.status, left(o.error, 2000) as error, left(o.response, 2000) as response, o.next_attempt_at
      from jsonb_to_recordset(p_outcomes)
        as o(log_id uuid, status public.notification_status, error text, response text, next_attempt_at timestamptz)
  ),
  updated as (
    -- A delivery already sent stays sent, whoever reports late.
    update public.notification_logs l
       set attempts = l.attempts + 1,
           status = o.status,
           last_error = case when o.status = 'sent' then l.last_error else o.error end,
           provider_response = coalesce(o.response, l.provider_response),
           next_attempt_at = case when o.status = 'pending' then o.next_attempt_at end,
           sent_at = case when o.status = 'sent' then p_now else l.sent_at end,
           updated_at = p_now
      from outcome o
     where l.id = o.log_id
       and l.status = 'pending'
    returning l.conversation_id, l.lead_event_id, l.channel, l.status, l.attempts, l.last_error
  )
  insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
  select u.conversation_id,
         case u.status when 'sent' then 'notification_sent' else 'notification_failed' end::public.timeline_event_type,
         case u.status
           when 'sent' then public.channel_title(u.channel) || ' alert sent'
           else public.channel_title(u.channel) || ' failed after ' || u.attempts
                || case u.attempts when 1 then ' attempt' else ' attempts' end
         end,
         case u.status when 'sent' then e.event_type::text else left(e.event_type::text || ': ' || coalesce(u.last_error, 'unknown error'), 2000) end,
         'system',
         'leadrelay',
         jsonb_build_object('channel', u.channel, 'lead_event_id', u.lead_event_id, 'attempts', u.attempts),
         p_now
    from updated u
    join public.lead_events e on e.id = u.lead_event_id
   where u.status in ('sent', 'failed');

  with mine as (
    select e.id,
           (select min(l.next_attempt_at) from public.notification_logs l
             where l.lead_event_id = e.id and l.status = 'pending') as next_at,
           exists (select from public.notification_logs l
                    where l.lead_event_id = e.id and l.status = 'pending') as open
      from public.lead_events e
     where e.id = any (p_event_ids)
       and e.lease_owner = p_worker
       and not e.processed
       for update
  ),
  done as (
    update public.lead_events e
       set processed = not mine.open,
           processed_at = case when mine.open then null else p_now end,
           available_at = case when mine.open then coalesce(mine.next_at, p_now) else e.available_at end,
           retry_count = e.retry_count + case when mine.open then 1 else 0 end,
           lease_owner = null,
           lease_expires_at = null
      from mine
     where e.id = mine.id
    returning e.processed
  )
  select count(*) filter (where processed) into processed_count from done;
  return processed_count;
end
$$;

-- Sends an event's failed channels again (the admin's replay): their deliveries go back to
-- pending with a fresh set of attempts, and the event is due now. Returns the number of
-- channels queued again; 0 when nothing had failed.
create or replace function public.replay_lead_event(p_event_id uuid, p_now timestamptz default now())
returns integer
language plpgsql
set search_path = ''
as $$
declare
  channels text[];
  conversation uuid;
begin
  if not exists (select from public.lead_events e where e.id = p_event_id) then
    raise exception 'lead event % not found', p_event_id using errcode = 'P0002';
  end if;
  with replayed as (
    update public.notification_logs l
       set status = 'pending', attempts = 0, next_attempt_at = p_now, updated_at = p_now
     where l.lead_event_id = p_event_id
       and l.status = 'failed'
    returning l.channel, l.conversation_id
  )
  select array_agg(public.channel_title(r.channel) order by r.channel), min(r.conversation_id::text)::uuid
    into channels, conversation
    from replayed r;
  if channels is null then
    return 0;
  end if;
  update public.lead_events e
     set processed = false, processed_at = null, available_at = p_now,
         lease_owner = null, lease_expires_at = null
   where e.id = p_event_id;
  insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, metadata, created_at)
  values (conversation, 'note', 'Replay requested', 'Sending again: ' || array_to_string(channels, ', '),
          'system', jsonb_build_object('lead_event_id', p_event_id), p_now);
  return cardinality(channels);
end
$$;

revoke execute on function public.claim_lead_events(text, interval, integer, timestamptz) from public, anon, authenticated;
revoke execute on function public.start_deliveries(uuid[], public.notification_channel[], timestamptz) from public, anon, authenticated;
revoke execute on function public.finish_deliveries(text, uuid[], jsonb, timestamptz) from public, anon, authenticated;
revoke execute on function public.replay_lead_event(uuid, timestamptz) from public, anon, authenticated;
revoke execute on function public.channel_title(public.notification_channel) from public, anon, authenticated;
grant execute on function public.claim_lead_events(text, interval, integer, timestamptz) to service_role;
grant execute on function public.start_deliveries(uuid[], public.notification_channel[], timestamptz) to service_role;
grant execute on function public.finish_deliveries(text, uuid[], jsonb, timestamptz) to service_role;
grant execute on function public.replay_lead_event(uuid, timestamptz) to service_role;
grant execute on function public.channel_title(public.notification_channel) to service_role;

-- The dispatcher's side of the outbox. An event's deliveries are opened once (one
-- notification_logs row per routed channel); then each delivery is claimed under a lease of
-- its own just before its attempt is sent, and its outcome recorded as soon as it is known,
-- fenced by the attempt number. Every step is idempotent, so a doorbell that rings twice,
-- late, or for a finished event changes nothing. Time comes in as p_now so tests choose it.

-- The name a person reads for a channel. PL/pgSQL, not SQL: a SQL function that cannot be
-- inlined (its search_path is set) is parsed and planned again in every statement that calls
-- it; a PL/pgSQL one keeps its plan for the session.
create or replace function public.channel_title(p_channel public.notification_channel)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return case p_channel
    when 'slack' then 'Slack'
    when 'email' then 'Email'
    when 'telegram' then 'Telegram'
    when 'whatsapp' then 'WhatsApp'
    when 'sms' then 'SMS'
    when 'crm' then 'CRM'
  end;
end
$$;

-- The channels an event of p_event_type goes to, among p_channels: the one place routing is
-- decided, for the service's channels and for the developer's console alike. PL/pgSQL for
-- the same reason as channel_title.
create or replace function public.event_channels(
  p_event_type public.lead_event_type,
  p_channels public.notification_channel[]
)
returns setof public.notification_channel
language plpgsql
stable
rows 3
set search_path = ''
as $$
begin
  return query
  select r.channel from public.notification_routes r
   where r.event_type = p_event_type
     and r.channel = any (p_channels);
end
$$;

-- How long a replica counts as live after it was last seen: the one place it is set. A
-- replica refreshes its row every sixth of it (10 s: dispatch reads it from
-- announce_replica), so a live one misses five refreshes (a database blip, a long pause)
-- before its channels stop being opened. A minute is also the bound after which /readyz calls
-- a silent dispatcher stuck (NOTIFY_LEASE + 2 x NOTIFY_SEND_TIMEOUT). Longer is the safe
-- side: a channel opened that no replica has any more ends visibly failed, and replayable
-- (fail_unserved_deliveries); one not opened is an alert never sent, which nobody sees.
create or replace function public.replica_window()
returns interval
language sql
immutable
set search_path = ''
as $$ select interval '1 minute' $$;

-- How long a pending delivery whose channel no live replica has waits before
-- fail_unserved_deliveries ends it: the one place it is set. Much longer than the window, on
-- purpose: the only replica with a channel may be restarting or redeployed for minutes, and
-- its deliveries should wait for it and go out when it is back, as they did before replicas
-- announced themselves; a channel removed from the deployment still shows its deliveries
-- failed, for a replay, within the hour.
create or replace function public.unserved_grace()
returns interval
language sql
immutable
set search_path = ''
as $$ select interval '1 hour' $$;

-- Records that p_replica is live at p_now and can send p_channels, and forgets replicas not
-- seen for a window (each replica process has a name of its own, so the dead ones would pile
-- up). Returns the window, which the caller refreshes well within. Security definer: the
-- table is private, and the service may call it as service_role.
create or replace function public.announce_replica(
  p_replica text,
  p_channels public.notification_channel[],
  p_now timestamptz default now()
)
returns interval
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into leadrelay_private.replica_channels as r (replica, channels, seen_at)
  values (p_replica, p_channels, p_now)
  on conflict (replica) do update set channels = excluded.channels, seen_at = excluded.seen_at;
  -- SKIP LOCKED: two replicas pruning at once never wait on each other.
  delete from leadrelay_private.replica_channels r
   where r.replica in (select o.replica from leadrelay_private.replica_channels o
                        where o.seen_at <= p_now - public.replica_window() and o.replica <> p_replica
                          for update skip locked);
  return public.replica_window();
end
$$;

-- The channels of the fleet: p_channels (the caller's own; it is live) and those of every
-- replica seen within the window before p_now. What opens deliveries (open_lead_events, a
-- give-up's fallbacks) uses it, so a lead gets a delivery on every routed channel some live
-- replica can send, whichever replica opens it; claims stay each replica's own channels.
-- Read once per call, from a table of a few rows. PL/pgSQL: its plan is kept for the session.
create or replace function public.live_channels(p_channels public.notification_channel[], p_now timestamptz)
returns public.notification_channel[]
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  return array(
    select unnest(p_channels)
    union
    select unnest(r.channels) from leadrelay_private.replica_channels r
     where r.seen_at > p_now - public.replica_window());
end
$$;

-- The delivering replicas seen within the window before p_now (those live_channels counts),
-- by name, at most p_limit of them: what `leadrelay status` shows of the fleet. Bounded: the
-- table holds about one row per running replica (announce_replica forgets the dead ones).
-- Security definer: the table is private.
create or replace function public.live_replicas(p_now timestamptz, p_limit integer)
returns table (replica text, channels public.notification_channel[], seen_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
  select r.replica, r.channels, r.seen_at from leadrelay_private.replica_channels r
   where r.seen_at > p_now - public.replica_window()
   order by r.replica
   limit p_limit;
$$;

-- Opens the deliveries of up to p_limit new events, oldest first: one pending
-- notification_logs row per routed channel among the fleet's (live_channels: p_channels,
-- the caller's, and those of the replicas seen within the window), due now; whichever replica
-- has a channel claims its deliveries. An event routed to none of them is processed at once.
-- SKIP LOCKED lets replicas open side by side; opening is idempotent (one delivery per event
-- and channel). Returns the number of events opened.
create or replace function public.open_lead_events(
  p_channels public.notification_channel[],
  p_limit integer,
  p_now timestamptz default now()
)
returns integer
language plpgsql
set search_path = ''
set jit = off -- a few rows each: compiling the plan would cost more than running it
set plan_cache_mode = force_generic_plan -- planned once per connection (see claim_deliveries)
as $$
declare
  opened integer;
  fleet public.notification_channel[] := public.live_channels(p_channels, p_now); -- once per call, not per event
begin
  with fresh as (
    select e.id, e.conversation_id, e.event_type
      from public.lead_events e
     where e.deliveries_opened_at is null
       and e.available_at <= p_now
     order by e.available_at
     limit p_limit
       for update skip locked
  ),
  -- Routed once per event type present (one or two), not once per event.
  routes as (
    select t.event_type, c.channel
      from (select distinct f.event_type from fresh f) t
     cross join lateral public.event_channels(t.event_type, fleet) c(channel)
  ),
  inserted as (
    insert into public.notification_logs (lead_event_id, conversation_id, channel, next_attempt_at)
    select f.id, f.conversation_id, r.channel, p_now
      from fresh f
      join routes r on r.event_type = f.event_type
    on conflict (lead_event_id, channel) do nothing
  ),
  unrouted as (
    select array(select f.id from fresh f where f.event_type not in (select r.event_type from routes r)) as ids
  ),
  marked as (
    -- By key, through arrays: joined to fresh, the planner would trust its guess for
    -- "limit p_limit" (a tenth of the table) and hash a full scan of lead_events. An event
    -- routed nowhere is processed at once.
    update public.lead_events e
       set deliveries_opened_at = p_now,
           processed = e.id = any ((select u.ids from unrouted u)::uuid[]),
           processed_at = case when e.id = any ((select u.ids from unrouted u)::uuid[]) then p_now end
     where e.id = any (array(select f.id from fresh f))
    returning e.id
  )
  select count(*)::integer into opened from marked;
  return opened;
end
$$;

-- Claims, for each channel of p_channels, up to the matching p_limits of its due pending
-- deliveries, oldest first, for p_worker until p_now + p_lease, and starts their next
-- attempt (attempts + 1: the fencing token the outcome must carry). The caller sends each
-- at once: a claim is the mark, committed before the send, that an attempt may be going out.
-- A delivery whose previous attempt was claimed and never recorded (its owner died, or lost
-- its lease) is a possible repeat: the timeline says so, and so does `repeat`.
-- Returns each claimed delivery with what its alert says.
create or replace function public.claim_deliveries(
  p_worker text,
  p_lease interval,
  p_channels public.notification_channel[],
  p_limits integer[],
  p_now timestamptz default now()
)
returns setof public.dispatch_alert -- log_id, channel, attempt, repeat and the alert; channels null
language plpgsql
set search_path = ''
set jit = off -- a few rows each: compiling the plan would cost more than running it
-- Planned once per connection: a language sql function is planned again on every call, which
-- cost more than running it (issue #14); the plan reads by key whatever the arguments.
set plan_cache_mode = force_generic_plan
-- Each channel's queue is read in order through notification_logs_due_idx. With statistics from
-- before a burst (almost nothing pending) the planner would rather read the console's
-- notification_logs_open_idx, every failed and pending delivery, and sort them; and the plan
-- stays until the next analyze. Nothing else here sorts.
set enable_sort = off
-- Every row here is found by key. A plan made while notification_logs was nearly empty (a
-- replica's first claim before a burst) would seq-scan it for the picked ids, and the plan is
-- kept for the connection's life: at 40,000 rows each claim read them all.
set enable_seqscan = off
as $$
begin
  return query
  with picked as (
    select d.id, d.lease_owner as cut_off
      from unnest(p_channels, p_limits) as w(channel, n)
     cross join lateral (
       select l.id, l.lease_owner
         from public.notification_logs l
        where l.channel = w.channel
          and l.status = 'pending'
          and l.next_attempt_at <= p_now
          and (l.lease_expires_at is null or l.lease_expires_at <= p_now)
        order by l.next_attempt_at
        limit w.n
          for update skip locked
     ) d
  ),
  updated as (
    update public.notification_logs l
       set attempts = l.attempts + 1,
           lease_owner = p_worker,
           lease_expires_at = p_now + p_lease
     where l.id = any (array(select p.id from picked p)) -- by key, whatever the guess for the limits
    returning l.id, l.lead_event_id, l.conversation_id, l.channel, l.attempts
  ),
  claimed as (
    select u.*, p.cut_off from updated u join picked p on p.id = u.id
  ),
  noted as (
    insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select c.conversation_id, 'note',
           public.channel_title(c.channel) || ' alert may go out twice',
           'Attempt ' || (c.attempts - 1) || ' by ' || left(c.cut_off, 200)
             || ' was cut off before its outcome was recorded; if it reached '
             || public.channel_title(c.channel) || ', attempt ' || c.attempts || ' repeats it.',
           'system', 'leadrelay',
           jsonb_build_object('channel', c.channel, 'lead_event_id', c.lead_event_id, 'attempt', c.attempts, 'possible_repeat', true),
           p_now
      from claimed c
     where c.cut_off is not null
  )
  select c.id, c.lead_event_id, c.channel, null::public.notification_channel[], c.attempts, c.cut_off is not null, e.event_type,
         v.id, v.form, v.source, v.name, v.email, coalesce(v.phone, v.phone_raw || ' (not verified)'), v.property_id, v.property_title,
         v.quality, v.score_reasons, v.sla_response_deadline, f.follow_up_date
    from claimed c
    join public.lead_events e on e.id = c.lead_event_id
    join public.conversations v on v.id = c.conversation_id
    left join public.follow_up_tasks f on f.id = e.follow_up_task_id;
end
$$;

-- Records attempts' outcomes. p_outcomes is a JSON array of {log_id, attempt, status:
-- sent|failed|pending, error, response, next_attempt_at}: 'pending' is a transient failure
-- retried at next_attempt_at. An outcome counts only while its attempt is the delivery's
-- latest (the fencing token): late, after another owner took the delivery over, it changes
-- nothing; late with nobody else on it, it is recorded as usual. A delivery that ended gets
-- its timeline entry; one that gave up for good opens its route's fallback channels among
-- the fleet's (live_channels of p_channels, the caller's); an event whose deliveries have all
-- ended is processed. Returns the number of
-- outcomes recorded.
--
-- Its lookups say "not ended" rather than status = 'pending' on purpose: that predicate matches
-- the partial queue index, and with statistics from before a burst (autovacuum analyzes a
-- minute later at best) the planner reads that whole index, every pending entry and every dead
-- one, for each outcome and each event (issue #14). Written this way only the primary key and
-- the (lead_event_id, channel) key can serve them: a few rows each, whatever the backlog.
create or replace function public.record_deliveries(
  p_outcomes jsonb,
  p_channels public.notification_channel[],
  p_now timestamptz default now()
)
returns integer
language plpgsql
set search_path = ''
set jit = off -- a few rows each: compiling the plan would cost more than running it
-- Every row here is found by key; a cached generic plan made while notification_logs was nearly
-- empty would seq-scan it for each batch of outcomes (see claim_deliveries).
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
as $$
declare
  recorded integer;
  ended uuid[];
  gave_up uuid[];
  fleet public.notification_channel[];
begin
  with outcome as (
    select o.log_id, o.attempt, o.status, left(o.error, 2000) as error, left(o.response, 2000) as response, o.next_attempt_at
      from jsonb_to_recordset(p_outcomes)
        as o(log_id uuid, attempt integer, status public.notification_status, error text, response text, next_attempt_at timestamptz)
  ),
  updated as (
    update public.notification_logs l
       set status = o.status,
           last_error = case when o.status = 'sent' then l.last_error else o.error end,
           provider_response = coalesce(o.response, l.provider_response),
           next_attempt_at = case when o.status = 'pending' then o.next_attempt_at end,
           sent_at = case when o.status = 'sent' then p_now else l.sent_at end,
           lease_owner = null,
           lease_expires_at = null,
           updated_at = p_now
      from outcome o
     where l.id = any (array(select o.log_id from outcome o)) -- by key, however many rows the function is guessed to return
       and l.id = o.log_id
       and l.attempts = o.attempt
       and l.status not in ('sent', 'delivered', 'failed') -- pending; see above
    returning l.id, l.conversation_id, l.lead_event_id, l.channel, l.status, l.attempts, l.last_error
  ),
  ended_here as (
    -- Deliveries of one event may end in two transactions at once: each locks the events
    -- whose deliveries it ended, in id order, and checks them in the next statement, whose
    -- snapshot is taken after the lock: whoever locks last sees the other's outcome, so the
    -- event is processed exactly when its last delivery ends.
    select u.*, e.event_type
      from updated u
      join public.lead_events e on e.id = u.lead_event_id
     where u.status in ('sent', 'failed')
     order by e.id
       for update of e
  ),
  titles as materialized (
    -- Each channel's title once per call, not once per entry.
    select c.channel, public.channel_title(c.channel) as title from unnest(p_channels) c(channel)
  ),
  timeline as (
    insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select u.conversation_id,
           case u.status when 'sent' then 'notification_sent' else 'notification_failed' end::public.timeline_event_type,
           case u.status
             when 'sent' then coalesce(t.title, public.channel_title(u.channel)) || ' alert sent'
             -- 0 attempts: never tried, ended because no live replica has the channel
             -- (fail_unserved_deliveries).
             else coalesce(t.title, public.channel_title(u.channel))
                  || case u.attempts when 0 then ' alert not sent' when 1 then ' failed after 1 attempt'
                     else ' failed after ' || u.attempts || ' attempts' end
           end,
           case u.status when 'sent' then u.event_type::text else left(u.event_type::text || ': ' || coalesce(u.last_error, 'unknown error'), 2000) end,
           'system'::public.actor_type, 'leadrelay',
           jsonb_build_object('channel', u.channel, 'lead_event_id', u.lead_event_id, 'attempts', u.attempts),
           p_now
      from ended_here u
      left join titles t on t.channel = u.channel
  )
  select (select count(*)::integer from updated),
         array(select distinct u.lead_event_id from ended_here u),
         array(select u.id from ended_here u where u.status = 'failed')
    into recorded, ended, gave_up;

  if cardinality(gave_up) > 0 then
    -- Rare, so a statement of its own (its insert would cost every call): each delivery that
    -- gave up opens its route's fallback channels among the fleet's, before the events are
    -- checked below, so an event with a fallback on its way stays unprocessed.
    fleet := public.live_channels(p_channels, p_now);
    with fallback as (
      insert into public.notification_logs (lead_event_id, conversation_id, channel, next_attempt_at, fallback_for)
      select l.lead_event_id, l.conversation_id, f.channel, p_now, l.channel
        from public.notification_logs l
        join public.lead_events e on e.id = l.lead_event_id
        join public.notification_routes r on r.event_type = e.event_type and r.channel = l.channel
       cross join lateral unnest(r.fallback) f(channel)
       where l.id = any (gave_up)
         and f.channel = any (fleet)
      on conflict (lead_event_id, channel) do nothing
      returning conversation_id, lead_event_id, channel, fallback_for
    )
    insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select f.conversation_id, 'note',
           public.channel_title(f.channel) || ' alert queued instead of ' || public.channel_title(f.fallback_for),
           public.channel_title(f.fallback_for) || ' gave up, so the alert goes to ' || public.channel_title(f.channel) || ' as its fallback.',
           'system', 'leadrelay',
           jsonb_build_object('channel', f.channel, 'lead_event_id', f.lead_event_id, 'fallback_for', f.fallback_for),
           p_now
      from fallback f;
  end if;

  if cardinality(ended) > 0 then
    -- Its plan is made once per connection, maybe while few events wait and few deliveries
    -- exist, and kept: so the events are found by key, never through the waiting index
    -- ("processed is false" does not match its predicate, "not processed" would), and each
    -- event's deliveries by its key, one lookup per event (OFFSET 0 keeps the subquery a
    -- lookup: as a join, a plan made on a small table hashes the whole key index).
    update public.lead_events e
       set processed = true, processed_at = p_now
     where e.id = any (ended)
       and e.processed is false
       and not exists (
         select from public.notification_logs l
          where l.lead_event_id = e.id
            and l.status not in ('sent', 'delivered', 'failed')
         offset 0);
  end if;
  return recorded;
end
$$;

-- Ends, as failed, up to p_limit pending deliveries that no live replica can send: their
-- channel is none of the fleet's (live_channels: p_channels, the caller's, and those of the
-- replicas seen within the window), they have been due for longer than unserved_grace(),
-- and nobody holds them. Such a delivery would otherwise wait forever (its channel was removed
-- from the deployment, or its last replica died); failed, it is on the console's deliveries
-- page and in the timeline, with last_error saying why, its route's fallbacks are opened as
-- for any give-up, and a replay (leadrelay replay, the console) sends it again once a replica
-- has the channel. Due for the grace first: a replica restarting, or still on a version that
-- does not announce itself, is not taken for gone. Each channel's queue is read through
-- notification_logs_due_idx, only for the channels no live replica has (usually none).
-- Returns the number failed.
create or replace function public.fail_unserved_deliveries(
  p_channels public.notification_channel[],
  p_limit integer,
  p_now timestamptz default now()
)
returns integer
language plpgsql
set search_path = ''
set jit = off
as $$
declare
  fleet public.notification_channel[] := public.live_channels(p_channels, p_now);
  outcomes jsonb;
begin
  select jsonb_agg(jsonb_build_object(
           'log_id', d.id, 'attempt', d.attempts, 'status', 'failed',
           'error', 'no live replica has ' || public.channel_title(d.channel) || ' (none seen for '
             || extract(epoch from public.replica_window())::integer || ' s; the live ones have '
             || coalesce((select string_agg(public.channel_title(c), ', ' order by c) from unnest(fleet) c), 'nothing')
             || '): replay it once a replica has ' || public.channel_title(d.channel)))
    into outcomes
    from (
      select l.id, l.attempts, l.channel
        from unnest(enum_range(null::public.notification_channel)) g(channel)
       cross join lateral (
         select l.id, l.attempts, l.channel
           from public.notification_logs l
          where l.channel = g.channel
            and l.status = 'pending'
            and l.next_attempt_at <= p_now - public.unserved_grace()
            and (l.lease_expires_at is null or l.lease_expires_at <= p_now)
          order by l.next_attempt_at
          limit p_limit
            for update skip locked
       ) l
       where g.channel <> all (fleet)
       limit p_limit
    ) d;
  if outcomes is null then
    return 0;
  end if;
  return public.record_deliveries(outcomes, p_channels, p_now);
end
$$;

-- Gives back deliveries p_worker claimed and will not send (it is stopping): their attempt
-- never started, so they are due again at once, for anyone, and no repeat.
create or replace function public.release_deliveries(p_worker text, p_log_ids uuid[], p_attempts integer[])
returns integer
language sql
set search_path = ''
as $$
  with released as (
    update public.notification_logs l
       set attempts = l.attempts - 1, lease_owner = null, lease_expires_at = null
      from unnest(p_log_ids, p_attempts) as r(id, attempt)
     where l.id = r.id and l.attempts = r.attempt and l.lease_owner = p_worker
    returning l.id
  )
  select count(*)::integer from released;
$$;

-- Extends p_worker's leases on deliveries still in flight (the heartbeat of a long send), so
-- nobody takes them over while the attempt is alive. Returns how many it still holds.
create or replace function public.renew_delivery_leases(
  p_worker text,
  p_log_ids uuid[],
  p_attempts integer[],
  p_lease interval,
  p_now timestamptz default now()
)
returns integer
language sql
set search_path = ''
as $$
  with renewed as (
    update public.notification_logs l
       set lease_expires_at = p_now + p_lease
      from unnest(p_log_ids, p_attempts) as r(id, attempt)
     where l.id = r.id and l.attempts = r.attempt and l.lease_owner = p_worker
    returning l.id
  )
  select count(*)::integer from renewed;
$$;

-- The developer's console (make run with no channel configured) stands in for every channel:
-- it takes up to p_limit new events, processes them, and returns each with the channels
-- production would send it to (routed by event_channels, as open_lead_events routes) and
-- what its alert says. Events routed nowhere are processed and not returned.
create or replace function public.claim_console_events(p_limit integer, p_now timestamptz default now())
returns setof public.dispatch_alert -- lead_event_id, channels and the alert; log_id, channel, attempt, repeat null
language sql
set search_path = ''
set jit = off -- a few rows each: compiling the plan would cost more than running it
as $$
  with fresh as (
    select e.id
      from public.lead_events e
     where e.deliveries_opened_at is null
       and e.available_at <= p_now
     order by e.available_at
     limit p_limit
       for update skip locked
  ),
  done as (
    update public.lead_events e
       set deliveries_opened_at = p_now, processed = true, processed_at = p_now
      from fresh f
     where e.id = f.id
    returning e.id, e.event_type, e.conversation_id, e.follow_up_task_id, e.available_at,
              array(select public.event_channels(e.event_type, enum_range(null::public.notification_channel))) as channels
  )
  select null::uuid, d.id, null::public.notification_channel, d.channels, null::integer, null::boolean, d.event_type, v.id, v.form, v.source, v.name, v.email, coalesce(v.phone, v.phone_raw || ' (not verified)'),
         v.property_id, v.property_title, v.quality, v.score_reasons, v.sla_response_deadline, f.follow_up_date
    from done d
    join public.conversations v on v.id = d.conversation_id
    left join public.follow_up_tasks f on f.id = d.follow_up_task_id
   where cardinality(d.channels) > 0
   order by d.available_at;
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
  who text;
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
  -- Who asked: the signed-in admin, else whom the service names (the console), else the system.
  who := coalesce(auth.uid()::text, nullif(current_setting('leadrelay.actor_id', true), ''));
  insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
  values (conversation, 'note', 'Replay requested', 'Sending again: ' || array_to_string(channels, ', '),
          case when who is null then 'system' else 'agent' end::public.actor_type, who,
          jsonb_build_object('lead_event_id', p_event_id) || jsonb_strip_nulls(jsonb_build_object(
            'actor_email', coalesce(auth.jwt() ->> 'email', nullif(current_setting('leadrelay.actor_email', true), '')))),
          p_now);
  return cardinality(channels);
end
$$;

revoke execute on function
  public.event_channels(public.lead_event_type, public.notification_channel[]),
  public.open_lead_events(public.notification_channel[], integer, timestamptz),
  public.claim_deliveries(text, interval, public.notification_channel[], integer[], timestamptz),
  public.record_deliveries(jsonb, public.notification_channel[], timestamptz),
  public.release_deliveries(text, uuid[], integer[]),
  public.renew_delivery_leases(text, uuid[], integer[], interval, timestamptz),
  public.claim_console_events(integer, timestamptz),
  public.replay_lead_event(uuid, timestamptz),
  public.channel_title(public.notification_channel),
  public.replica_window(),
  public.unserved_grace(),
  public.announce_replica(text, public.notification_channel[], timestamptz),
  public.live_channels(public.notification_channel[], timestamptz),
  public.live_replicas(timestamptz, integer),
  public.fail_unserved_deliveries(public.notification_channel[], integer, timestamptz)
from public, anon, authenticated;
grant execute on function
  public.event_channels(public.lead_event_type, public.notification_channel[]),
  public.open_lead_events(public.notification_channel[], integer, timestamptz),
  public.claim_deliveries(text, interval, public.notification_channel[], integer[], timestamptz),
  public.record_deliveries(jsonb, public.notification_channel[], timestamptz),
  public.release_deliveries(text, uuid[], integer[]),
  public.renew_delivery_leases(text, uuid[], integer[], interval, timestamptz),
  public.claim_console_events(integer, timestamptz),
  public.replay_lead_event(uuid, timestamptz),
  public.channel_title(public.notification_channel),
  public.replica_window(),
  public.unserved_grace(),
  public.announce_replica(text, public.notification_channel[], timestamptz),
  public.live_channels(public.notification_channel[], timestamptz),
  public.live_replicas(timestamptz, integer),
  public.fail_unserved_deliveries(public.notification_channel[], integer, timestamptz)
to service_role;

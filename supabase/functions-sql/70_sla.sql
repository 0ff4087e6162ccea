-- The SLA engine's side of the database: turn due warnings, breaches and follow-ups into
-- outbox events (which the dispatcher routes to the channels), timeline entries and flags,
-- each exactly once; the admin's SLA reads; and the leader lease that lets one replica at a
-- time run the jobs. Time comes in as p_now so tests choose it; leases alone run on the
-- database's clock, the one clock every replica shares.
--
-- Exactly once, three ways over: a tick claims due rows with FOR UPDATE SKIP LOCKED (an
-- overlapping tick skips them, and one that read them before they changed re-checks them
-- when it locks them), it sets the flag that takes the row out of the due index in the same
-- statement as the event, and the event's idempotency key is unique (the timeline entry is
-- written only for an event that was inserted).
--
-- The ticks write their events and entries set-based, one statement per step, as
-- public.record_lead_event writes one (the same key, public.lead_event_key; the entry only
-- with its event, naming it): called per row, that function doubled a 600-breach tick and
-- rang the console's doorbell 600 times instead of once.

-- Leads whose deadline has passed without a human answer become sla.breached; then leads
-- whose warning time has come, and whose deadline has not, become sla.warning (a warning
-- after the deadline would only repeat the breach). Each step takes at most p_limit leads,
-- oldest first; a caller with more to do calls again.
create or replace function public.sla_tick(p_now timestamptz, p_limit integer default 500)
returns table (warnings integer, breaches integer)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  n_warnings integer;
  n_breaches integer;
begin
  if p_now is null or p_limit is null or p_limit < 1 then
    raise exception 'sla_tick needs a time and a positive limit' using errcode = '22023';
  end if;

  -- The predicate of conversations_sla_breach_due_idx, then the due bound.
  with due as (
    select c.id
      from public.conversations c
     where c.first_response_at is null
       and not c.sla_breached
       and c.status not in ('closed', 'spam')
       and c.sla_response_deadline <= p_now
     order by c.sla_response_deadline
     limit p_limit
       for update skip locked
  ),
  breached as (
    update public.conversations c
       set sla_breached = true,
           sla_breached_at = p_now
      from due
     where c.id = due.id
       and not c.sla_breached
    returning c.id, c.quality, c.created_at, c.sla_response_deadline
  ),
  event as (
    insert into public.lead_events (event_type, conversation_id, payload, idempotency_key, available_at)
    select 'sla.breached',
           b.id,
           jsonb_build_object(
             'quality', b.quality,
             'sla_response_deadline', b.sla_response_deadline,
             'breached_at', p_now
           ),
           public.lead_event_key('sla.breached', b.id::text),
           p_now -- due when the tick says, by the clock the dispatcher is given
      from breached b
    on conflict (idempotency_key) do nothing
    returning id, conversation_id
  ),
  entry as (
    insert into public.conversation_timeline
      (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select b.id,
           'sla_breached',
           'SLA breached',
           format('No human answer within %s of the lead''s arrival (%s lead)',
                  public.duration_text(b.sla_response_deadline - b.created_at), upper(b.quality::text)),
           'system',
           'leadrelay-sla',
           jsonb_build_object('lead_event_id', e.id, 'sla_response_deadline', b.sla_response_deadline),
           p_now
      from breached b
      join event e on e.conversation_id = b.id
    returning 1
  )
  select count(*)::integer into n_breaches from entry;

  -- The predicate of conversations_sla_warning_due_idx, then the due bound. A lead past its
  -- deadline (one the breach step left for its next batch, or that a concurrent tick holds)
  -- is no warning: it must not take a place in the batch, or a tick could stop short of the
  -- real warnings behind it. The deadline is compared through an expression no index has,
  -- so the planner still walks the warning index (on the bare column it would walk the
  -- breach index over every unanswered lead not yet due).
  with due as (
    select c.id
      from public.conversations c
     where c.first_response_at is null
       and c.sla_warning_sent_at is null
       and not c.sla_breached
       and c.status not in ('closed', 'spam')
       and c.sla_warning_at <= p_now
       and c.sla_response_deadline + interval '0' > p_now
     order by c.sla_warning_at
     limit p_limit
       for update skip locked
  ),
  warned as (
    update public.conversations c
       set sla_warning_sent_at = p_now
      from due
     where c.id = due.id
       and c.sla_warning_sent_at is null
       and c.sla_response_deadline > p_now
    returning c.id, c.quality, c.sla_warning_at, c.sla_response_deadline
  ),
  event as (
    insert into public.lead_events (event_type, conversation_id, payload, idempotency_key, available_at)
    select 'sla.warning',
           w.id,
           jsonb_build_object(
             'quality', w.quality,
             'sla_warning_at', w.sla_warning_at,
             'sla_response_deadline', w.sla_response_deadline,
             'seconds_left', floor(extract(epoch from w.sla_response_deadline - p_now))::bigint
           ),
           public.lead_event_key('sla.warning', w.id::text),
           p_now -- due when the tick says, by the clock the dispatcher is given
      from warned w
    on conflict (idempotency_key) do nothing
    returning id, conversation_id
  ),
  entry as (
    insert into public.conversation_timeline
      (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select w.id,
           'sla_warning',
           'SLA deadline approaching',
           format('Not answered yet: %s left (%s lead)',
                  public.duration_text(w.sla_response_deadline - p_now), upper(w.quality::text)),
           'system',
           'leadrelay-sla',
           jsonb_build_object('lead_event_id', e.id, 'sla_response_deadline', w.sla_response_deadline),
           p_now
      from warned w
      join event e on e.conversation_id = w.id
    returning 1
  )
  select count(*)::integer into n_warnings from entry;

  return query select n_warnings, n_breaches;
end
$$;

-- Scheduled follow-up tasks whose SLA deadline has passed turn overdue (followup.overdue);
-- then scheduled tasks whose follow_up_date has come, and whose deadline has not, become
-- followup.due. A completed or cancelled task is neither. At most p_limit tasks per step.
create or replace function public.follow_up_tick(p_now timestamptz, p_limit integer default 500)
returns table (due integer, overdue integer)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  n_due integer;
  n_overdue integer;
begin
  if p_now is null or p_limit is null or p_limit < 1 then
    raise exception 'follow_up_tick needs a time and a positive limit' using errcode = '22023';
  end if;

  -- The predicate of follow_up_tasks_overdue_idx, then the due bound.
  with late as (
    select f.id
      from public.follow_up_tasks f
     where f.status = 'scheduled'
       and not f.sla_breached
       and f.sla_deadline <= p_now
     order by f.sla_deadline
     limit p_limit
       for update skip locked
  ),
  marked as (
    update public.follow_up_tasks f
       set status = 'overdue',
           overdue_at = p_now,
           sla_breached = true
      from late
     where f.id = late.id
       and f.status = 'scheduled'
    returning f.id, f.conversation_id, f.follow_up_date, f.sla_deadline, f.assigned_to
  ),
  event as (
    insert into public.lead_events (event_type, conversation_id, follow_up_task_id, payload, idempotency_key, available_at)
    select 'followup.overdue',
           m.conversation_id,
           m.id,
           jsonb_build_object(
             'follow_up_date', m.follow_up_date,
             'sla_deadline', m.sla_deadline,
             'overdue_at', p_now,
             'assigned_to', m.assigned_to
           ),
           public.lead_event_key('followup.overdue', m.id::text),
           p_now -- due when the tick says, by the clock the dispatcher is given
      from marked m
    on conflict (idempotency_key) do nothing
    returning id, follow_up_task_id
  ),
  entry as (
    insert into public.conversation_timeline
      (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select m.conversation_id,
           'followup_overdue',
           'Follow-up overdue',
           format('Not done %s after it was due', public.duration_text(m.sla_deadline - m.follow_up_date)),
           'system',
           'leadrelay-sla',
           jsonb_build_object('follow_up_task_id', m.id, 'lead_event_id', e.id, 'sla_deadline', m.sla_deadline),
           p_now
      from marked m
      join event e on e.follow_up_task_id = m.id
    returning 1
  )
  select count(*)::integer into n_overdue from entry;

  -- The predicate of follow_up_tasks_due_idx, then the due bound.
  with come as (
    select f.id
      from public.follow_up_tasks f
     where f.status = 'scheduled'
       and f.due_notified_at is null
       and f.follow_up_date <= p_now
       and (f.sla_deadline is null or f.sla_deadline > p_now)
     order by f.follow_up_date
     limit p_limit
       for update skip locked
  ),
  marked as (
    update public.follow_up_tasks f
       set due_notified_at = p_now
      from come
     where f.id = come.id
       and f.due_notified_at is null
    returning f.id, f.conversation_id, f.follow_up_date, f.sla_deadline, f.assigned_to
  ),
  event as (
    insert into public.lead_events (event_type, conversation_id, follow_up_task_id, payload, idempotency_key, available_at)
    select 'followup.due',
           m.conversation_id,
           m.id,
           jsonb_build_object(
             'follow_up_date', m.follow_up_date,
             'sla_deadline', m.sla_deadline,
             'assigned_to', m.assigned_to
           ),
           public.lead_event_key('followup.due', m.id::text),
           p_now -- due when the tick says, by the clock the dispatcher is given
      from marked m
    on conflict (idempotency_key) do nothing
    returning id, follow_up_task_id
  ),
  entry as (
    insert into public.conversation_timeline
      (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    select m.conversation_id,
           'followup_due',
           'Follow-up due',
           case when m.sla_deadline is null then 'A scheduled follow-up is due'
                else format('A scheduled follow-up is due; overdue in %s',
                            public.duration_text(m.sla_deadline - p_now))
           end,
           'system',
           'leadrelay-sla',
           jsonb_build_object('follow_up_task_id', m.id, 'lead_event_id', e.id, 'follow_up_date', m.follow_up_date),
           p_now
      from marked m
      join event e on e.follow_up_task_id = m.id
    returning 1
  )
  select count(*)::integer into n_due from entry;

  return query select n_due, n_overdue;
end
$$;

-- The admin's SLA alerts: open leads with no human answer whose warning time has come, the
-- breached ones included, soonest deadline first (so the longest breached lead leads), with
-- the time left (negative once breached). Walks conversations_sla_open_idx.
create or replace function public.sla_alerts(p_now timestamptz, p_limit integer default 200)
returns table (
  conversation_id uuid,
  name text,
  email text,
  phone text,
  form public.lead_form,
  source text,
  quality public.lead_quality,
  status public.conversation_status,
  assigned_to uuid,
  created_at timestamptz,
  sla_warning_at timestamptz,
  sla_response_deadline timestamptz,
  sla_warning_sent_at timestamptz,
  sla_breached_at timestamptz,
  breached boolean,
  seconds_left double precision
)
language sql
stable
set search_path = ''
as $$
  select c.id, c.name, c.email, c.phone, c.form, c.source, c.quality, c.status, c.assigned_to, c.created_at,
         c.sla_warning_at, c.sla_response_deadline, c.sla_warning_sent_at, c.sla_breached_at,
         c.sla_response_deadline <= p_now,
         extract(epoch from c.sla_response_deadline - p_now)::double precision
    from public.conversations c
   where c.first_response_at is null
     and c.status not in ('closed', 'spam')
     and c.sla_warning_at <= p_now
   order by c.sla_response_deadline, c.id
   limit p_limit
$$;

-- The SLA figures of the leads that arrived in [p_from, p_to), per quality and source: what
-- public.sla_daily_summary gives per day, with the median and p90 of the whole period.
create or replace function public.sla_summary(p_from timestamptz, p_to timestamptz)
returns table (
  quality public.lead_quality,
  source text,
  leads bigint,
  answered bigint,
  answered_in_time bigint,
  breached bigint,
  median_first_response_seconds double precision,
  p90_first_response_seconds double precision
)
language sql
stable
set search_path = ''
as $$
  select o.quality,
         o.source,
         count(*),
         count(o.first_response_at),
         count(*) filter (where o.answered_in_time),
         count(*) filter (where o.breached),
         percentile_cont(0.5) within group (order by extract(epoch from o.time_to_first_response)),
         percentile_cont(0.9) within group (order by extract(epoch from o.time_to_first_response))
    from public.sla_lead_outcomes o
   where o.created_at >= p_from
     and o.created_at < p_to
   group by o.quality, o.source
   order by o.quality, o.source
$$;

-- Takes the lease p_name for p_holder until p_ttl from now, or renews it: when nobody holds it,
-- when p_holder already does, or when its holder let it expire. The token goes up when the
-- holder changes. Returns whether p_holder holds it now, and who does.
--
-- It never waits on a lock. A leader's running job holds the row FOR KEY SHARE (the fence);
-- a renewal locks it FOR NO KEY UPDATE, which a fence does not block, so a leader renews
-- beside its own jobs; a takeover locks it FOR UPDATE, which a fence blocks, so a successor
-- cannot take over while the old leader's job may still commit. Both lock NOWAIT: a busy row
-- answers "not now" at once, and the caller asks again at its next try. A paused leader's
-- open job therefore holds off a successor only until the server ends that idle transaction
-- (the service's SLA connections run with idle_in_transaction_session_timeout within the
-- lease), never by making the successor wait.
create or replace function public.leader_lease_acquire(p_name text, p_holder text, p_ttl interval)
returns table (held boolean, holder text, token bigint, expires_at timestamptz)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  t timestamptz := clock_timestamp();
  cur public.leader_leases;
  renewal boolean;
begin
  if p_ttl is null or p_ttl <= interval '0' then
    raise exception 'a lease needs a positive duration' using errcode = '22023';
  end if;
  -- A follower asks without locking the row, so it never waits on the leader's jobs.
  select * into cur from public.leader_leases l where l.name = p_name;
  if not found then
    insert into public.leader_leases as l (name, holder, token, acquired_at, renewed_at, expires_at)
    values (p_name, p_holder, 1, t, t, t + p_ttl)
    on conflict (name) do nothing
    returning l.* into cur;
    if found then
      return query select true, cur.holder, cur.token, cur.expires_at;
      return;
    end if;
    select * into cur from public.leader_leases l where l.name = p_name;
  end if;
  if cur.holder is distinct from p_holder and cur.holder is not null and cur.expires_at > t then
    return query select false, cur.holder, cur.token, cur.expires_at;
    return;
  end if;

  renewal := coalesce(cur.holder = p_holder, false);
  begin
    if renewal then
      select * into cur from public.leader_leases l where l.name = p_name for no key update nowait;
    else
      select * into cur from public.leader_leases l where l.name = p_name for update nowait;
    end if;
  exception when lock_not_available then
    -- A job of the holder's is running (a takeover), or another replica is taking or
    -- renewing the lease this instant: not now.
    return query select false, cur.holder, cur.token, cur.expires_at;
    return;
  end;
  -- Under the lock, the row as it is now: another replica may have taken it meanwhile. A
  -- renewal's lock does not keep a fence out, so it may only renew, never take over.
  if (cur.holder is distinct from p_holder and cur.holder is not null and cur.expires_at > t)
     or (renewal and cur.holder is distinct from p_holder) then
    return query select false, cur.holder, cur.token, cur.expires_at;
    return;
  end if;

  update public.leader_leases l
     set holder = p_holder,
         token = case when l.holder = p_holder then l.token else l.token + 1 end,
         acquired_at = case when l.holder = p_holder then l.acquired_at else t end,
         renewed_at = t,
         expires_at = t + p_ttl
   where l.name = p_name
  returning l.* into cur;
  return query select true, cur.holder, cur.token, cur.expires_at;
end
$$;

-- Gives the lease up at once (a replica shutting down), so a successor need not wait for it
-- to expire. Returns whether p_holder held it.
create or replace function public.leader_lease_release(p_name text, p_holder text, p_token bigint)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  update public.leader_leases l
     set expires_at = clock_timestamp()
   where l.name = p_name
     and l.holder = p_holder
     and l.token = p_token
     and l.expires_at > clock_timestamp();
  return found;
end
$$;

-- The fence a leader's job runs behind, first in the job's transaction: true when p_holder
-- still holds the lease with p_token, and then the lease row is locked FOR KEY SHARE until the
-- transaction ends, so no successor can take it (and run the job too) before this job's
-- writes are committed, while the holder itself can still renew it. False when the lease has
-- passed on: the job must not run.
create or replace function public.leader_lease_fence(p_name text, p_holder text, p_token bigint)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  perform
    from public.leader_leases l
   where l.name = p_name
     and l.holder = p_holder
     and l.token = p_token
     and l.expires_at > clock_timestamp()
     for key share;
  return found;
end
$$;

revoke execute on function
  public.sla_tick(timestamptz, integer),
  public.follow_up_tick(timestamptz, integer),
  public.sla_alerts(timestamptz, integer),
  public.sla_summary(timestamptz, timestamptz),
  public.leader_lease_acquire(text, text, interval),
  public.leader_lease_release(text, text, bigint),
  public.leader_lease_fence(text, text, bigint)
from public, anon, authenticated;

grant execute on function
  public.sla_tick(timestamptz, integer),
  public.follow_up_tick(timestamptz, integer),
  public.sla_alerts(timestamptz, integer),
  public.sla_summary(timestamptz, timestamptz),
  public.leader_lease_acquire(text, text, interval),
  public.leader_lease_release(text, text, bigint),
  public.leader_lease_fence(text, text, bigint)
to service_role;

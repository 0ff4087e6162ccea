-- What happens, in the writing transaction, when a lead arrives or changes: its score and
-- SLA times, its outbox events (lead_events) and its audit trail (conversation_timeline).
--
-- The functions that write other tables are security definer: an admin's update through
-- PostgREST must write the event and the timeline entry, which the admin cannot insert.
-- Nobody calls a trigger function directly, so no role is granted execute on them.

-- An outbox event's idempotency key: '<type>:<subject>', the subject being what the event
-- happens once for (a lead, a follow-up task), or a fresh value for an event that happens any
-- number of times.
create or replace function public.lead_event_key(event_type public.lead_event_type, subject text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  return event_type || ':' || subject;
end
$$;

-- Records an outbox event with its timeline entry, the one way a row trigger writes one (the
-- SLA ticks write theirs set-based, the same way, in 70_sla.sql, and a new lead's lead.created
-- is written the same way by conversations_after_insert, in one statement): the
-- event's idempotency key is '<type>:<once_for>' when it happens once for a thing (the lead, a
-- follow-up task), else '<type>:<lead>:<random>', a new event each time. An event whose key is
-- taken is not written again, and neither is its entry; the entry names its event
-- (metadata.lead_event_id). Returns the event's id, null when it existed. available_at and
-- entry_at default to now().
create or replace function public.record_lead_event(
  event_type public.lead_event_type,
  conversation_id uuid,
  payload jsonb,
  once_for uuid,
  entry_type public.timeline_event_type,
  entry_title text,
  entry_description text,
  entry_actor public.actor_type,
  entry_actor_id text,
  entry_metadata jsonb,
  entry_at timestamptz default null,
  follow_up_task_id uuid default null,
  available_at timestamptz default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  event_id uuid;
begin
  insert into public.lead_events as e (event_type, conversation_id, follow_up_task_id, payload, idempotency_key, available_at)
  values (
    record_lead_event.event_type,
    record_lead_event.conversation_id,
    record_lead_event.follow_up_task_id,
    payload,
    public.lead_event_key(record_lead_event.event_type,
                          coalesce(once_for::text, record_lead_event.conversation_id || ':' || gen_random_uuid())),
    coalesce(record_lead_event.available_at, now())
  )
  on conflict (idempotency_key) do nothing
  returning e.id into event_id;
  if event_id is not null then
    insert into public.conversation_timeline
      (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
    values (
      record_lead_event.conversation_id,
      entry_type,
      entry_title,
      entry_description,
      entry_actor,
      entry_actor_id,
      entry_metadata || jsonb_build_object('lead_event_id', event_id),
      coalesce(entry_at, now())
    );
  end if;
  return event_id;
end
$$;

-- Before a lead is saved: the person it belongs to and which of their inquiries it is, its
-- score and quality, and its SLA times, all from the row itself (a test chooses the time by
-- choosing created_at).
create or replace function public.conversations_before_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  score record;
  sla record;
  first_seen uuid;
begin
  if new.person_id is null then
    first_seen := gen_random_uuid();
    new.person_id := public.lead_person(new.email, new.phone, first_seen);
  end if;
  if new.person_id = first_seen then
    -- A person seen for the first time has no earlier lead.
    new.person_inquiry := 1;
    new.person_inquiries_24h := 1;
  elsif new.person_id is not null then
    -- The person's leads committed so far (lead_person's lock makes the concurrent ones wait),
    -- counted up to 1,000: a flood from one address must not make each lead slower.
    select count(*) + 1, count(*) filter (where p.created_at > new.created_at - interval '24 hours') + 1
      into new.person_inquiry, new.person_inquiries_24h
      from (
        select c.created_at
          from public.conversations c
         where c.person_id = new.person_id
         order by c.created_at desc
         limit 999
      ) p;
  end if;
  -- Called as expressions, not selected from: no executor per call.
  score := public.score_lead(new.phone, new.phone_raw, new.property_id, new.timeline, new.financing, new.budget,
                             new.person_inquiry, new.person_inquiries_24h, new.quality);
  new.quality := score.quality;
  new.lead_score := score.lead_score;
  new.score_reasons := score.reasons;
  sla := public.sla_times(new.quality, new.created_at);
  new.sla_response_deadline := sla.response_deadline;
  new.sla_warning_at := sla.warning_at;
  if not public.lead_is_open(new.status) then
    new.closed_at := coalesce(new.closed_at, new.created_at);
  end if;
  return new;
end
$$;

-- Before a lead changes: a new quality moves an unanswered lead's deadline; a status that
-- means a human has talked to the customer answers the lead (once); closing stamps closed_at.
create or replace function public.conversations_before_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  new.updated_at := now();
  if new.quality is distinct from old.quality and new.first_response_at is null then
    select t.response_deadline, t.warning_at
      into new.sla_response_deadline, new.sla_warning_at
      from public.sla_times(new.quality, new.created_at) t;
  end if;
  if new.status is distinct from old.status then
    if new.status in ('contacted', 'qualified', 'converted') then
      new.first_response_at := coalesce(new.first_response_at, now());
    end if;
    new.closed_at := case when not public.lead_is_open(new.status) then now() end;
  end if;
  return new;
end
$$;

-- A new lead's lead.created event and "Lead created" entry, and for a returning person a
-- "Returning lead: 3rd inquiry in 24 h" entry linking their earlier leads. The event's key is
-- the lead's id, so the event exists once however often this runs.
-- The event and its entry are written as record_lead_event writes them (the same key, the
-- entry naming its event in metadata.lead_event_id, neither when the key is taken), but in
-- one statement of this function's own: on every lead's path, the call of record_lead_event
-- (its arguments, its search_path, its own statements) was 2.4% of a lead's work (callgrind,
-- dev/tools/instructions intake).
create or replace function public.conversations_after_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  note text := case when new.person_inquiry > 1 then public.returning_note(new.person_inquiry, new.person_inquiries_24h) end;
  earlier uuid[];
begin
  with event as (
    insert into public.lead_events as e (event_type, conversation_id, payload, idempotency_key, available_at)
    values (
      'lead.created',
      new.id,
      jsonb_build_object(
        'form', new.form,
        'source', new.source,
        'quality', new.quality,
        'lead_score', new.lead_score,
        'sla_response_deadline', new.sla_response_deadline,
        'person_id', new.person_id,
        'returning', note
      ),
      public.lead_event_key('lead.created', new.id::text),
      now()
    )
    on conflict (idempotency_key) do nothing
    returning e.id
  )
  insert into public.conversation_timeline
    (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
  select new.id,
         'created',
         'Lead created',
         format('%s lead from %s: %s (score %s)',
           replace(new.form::text, '_', ' '), new.source, upper(new.quality::text), new.lead_score),
         'customer',
         null,
         jsonb_build_object(
           'form', new.form,
           'source', new.source,
           'quality', new.quality,
           'lead_score', new.lead_score,
           'score_reasons', new.score_reasons,
           'sla_response_deadline', new.sla_response_deadline,
           'sla_warning_at', new.sla_warning_at,
           'lead_event_id', event.id
         ),
         new.created_at
    from event;

  if note is not null then
    select array_agg(e.id order by e.created_at desc) into earlier
      from (
        select c.id, c.created_at
          from public.conversations c
         where c.person_id = new.person_id and c.id <> new.id
         order by c.created_at desc
         limit 5
      ) e;
    insert into public.conversation_timeline
      (conversation_id, event_type, title, description, actor_type, metadata, created_at)
    values (
      new.id,
      'created',
      'Returning lead: ' || note,
      'Earlier inquiries of this person: '
        || (select string_agg('/admin/conversations/' || id, ', ') from unnest(earlier) id),
      'customer',
      jsonb_build_object(
        'person_id', new.person_id,
        'person_inquiry', new.person_inquiry,
        'person_inquiries_24h', new.person_inquiries_24h,
        'earlier_lead_ids', to_jsonb(earlier)
      ),
      new.created_at
    );
  end if;
  return null;
end
$$;

-- The one record of a lead's first human answer, whichever way it came: a lead.responded
-- event (keyed by the lead, so once) and a "First response" entry.
create or replace function public.record_first_response(
  lead public.conversations,
  actor public.actor_type,
  actor_id text,
  via text
)
returns void
language plpgsql
set search_path = ''
as $$
declare
  within_sla boolean := lead.first_response_at <= lead.sla_response_deadline;
  event_id uuid;
begin
  event_id := public.record_lead_event(
    event_type => 'lead.responded',
    conversation_id => lead.id,
    payload => jsonb_build_object(
      'first_response_at', lead.first_response_at,
      'sla_response_deadline', lead.sla_response_deadline,
      'within_sla', within_sla,
      'via', via
    ),
    once_for => lead.id,
    entry_type => 'first_response',
    entry_title => 'First response',
    entry_description => format('Answered after %s, %s the SLA deadline',
      public.duration_text(lead.first_response_at - lead.created_at),
      case when within_sla then 'within' else 'past' end),
    entry_actor => actor,
    entry_actor_id => actor_id,
    entry_metadata => jsonb_build_object(
      'via', via,
      'first_response_at', lead.first_response_at,
      'sla_response_deadline', lead.sla_response_deadline,
      'within_sla', within_sla
    ),
    entry_at => lead.first_response_at
  );
end
$$;

-- After a status or quality change: a lead.status_changed event (a new one per change) and
-- timeline entries. The actor is the signed-in user (the JWT's sub) where there is one.
create or replace function public.conversations_after_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- The signed-in user, else whom the service names (the console's actions).
  user_id text := coalesce(auth.uid()::text, nullif(current_setting('leadrelay.actor_id', true), ''));
  actor_email jsonb := jsonb_strip_nulls(jsonb_build_object(
    'actor_email', coalesce(auth.jwt() ->> 'email', nullif(current_setting('leadrelay.actor_email', true), ''))));
  actor public.actor_type := case when user_id is null then 'system' else 'agent' end;
  event_id uuid;
begin
  if new.status is distinct from old.status then
    event_id := public.record_lead_event(
      event_type => 'lead.status_changed',
      conversation_id => new.id,
      payload => jsonb_build_object('from', old.status, 'to', new.status),
      once_for => null,
      entry_type => 'status_changed',
      entry_title => format('Status changed from %s to %s', old.status, new.status),
      entry_description => null,
      entry_actor => actor,
      entry_actor_id => user_id,
      entry_metadata => jsonb_build_object('from', old.status, 'to', new.status) || actor_email
    );
    if old.first_response_at is null and new.first_response_at is not null then
      perform public.record_first_response(new, actor, user_id, 'status');
    end if;
    -- A closed or spam lead leaves the clock, its follow-ups too: they are cancelled (and
    -- stay cancelled if the lead is reopened; the admin schedules anew).
    if not public.lead_is_open(new.status) then
      update public.follow_up_tasks f
         set status = 'cancelled'
       where f.conversation_id = new.id
         and f.status = 'scheduled';
    end if;
  end if;

  if new.quality is distinct from old.quality then
    insert into public.conversation_timeline
      (conversation_id, event_type, title, actor_type, actor_id, metadata)
    values (
      new.id,
      'quality_changed',
      format('Quality changed from %s to %s', upper(old.quality::text), upper(new.quality::text)),
      actor,
      user_id,
      jsonb_build_object(
        'from', old.quality,
        'to', new.quality,
        'sla_response_deadline', new.sla_response_deadline,
        'sla_warning_at', new.sla_warning_at
      ) || actor_email
    );
  end if;
  return null;
end
$$;

-- An agent's message goes on the timeline ("Agent replied", naming the admin where one acts)
-- and answers the lead, once, at the time the message was sent. A bot's
-- message does not (the trigger only fires for agents).
create or replace function public.chat_messages_after_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  lead public.conversations;
begin
  insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata, created_at)
  values (
    new.conversation_id,
    'message',
    'Agent replied',
    left(new.content, 2000),
    'agent',
    new.sender_id,
    jsonb_build_object('chat_message_id', new.id) || public.admin_actor_metadata(),
    new.sent_at
  );
  update public.conversations
     set first_response_at = new.sent_at
   where id = new.conversation_id
     and first_response_at is null
  returning * into lead;
  if found then
    perform public.record_first_response(lead, 'agent', new.sender_id, 'message');
  end if;
  return null;
end
$$;

-- A follow-up task's updated_at, and the times it was completed and went overdue.
create or replace function public.follow_up_tasks_before_write()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  new.completed_at := case when new.status = 'completed' then coalesce(new.completed_at, now()) end;
  if new.status = 'overdue' then
    new.overdue_at := coalesce(new.overdue_at, now());
  end if;
  return new;
end
$$;

create or replace trigger conversations_before_insert
  before insert on public.conversations
  for each row execute function public.conversations_before_insert();

create or replace trigger conversations_before_update
  before update on public.conversations
  for each row execute function public.conversations_before_update();

create or replace trigger conversations_after_insert
  after insert on public.conversations
  for each row execute function public.conversations_after_insert();

create or replace trigger conversations_after_update
  after update of status, quality on public.conversations
  for each row
  when (old.status is distinct from new.status or old.quality is distinct from new.quality)
  execute function public.conversations_after_update();

create or replace trigger chat_messages_after_insert
  after insert on public.chat_messages
  for each row
  when (new.sender_type = 'agent')
  execute function public.chat_messages_after_insert();

create or replace trigger follow_up_tasks_before_write
  before insert or update on public.follow_up_tasks
  for each row execute function public.follow_up_tasks_before_write();

-- A delivery's updated_at is when its state changed (status, schedule, error): the functions
-- that change it (record_deliveries, replay_lead_event) set it to the time they are given; a
-- claim or a lease renewal is bookkeeping and leaves it. A before-update trigger used to keep
-- it: any such trigger makes Postgres lock each row before updating it, a second write (and
-- WAL record) for every claim and every outcome, whatever its WHEN says.
drop trigger if exists notification_logs_before_update on public.notification_logs;
drop function if exists public.touch_updated_at();

revoke execute on function
  public.lead_event_key(public.lead_event_type, text),
  public.record_lead_event(public.lead_event_type, uuid, jsonb, uuid, public.timeline_event_type, text, text,
                           public.actor_type, text, jsonb, timestamptz, uuid, timestamptz)
from public, anon, authenticated;
-- The SLA engine's ticks run as the service.
grant execute on function public.lead_event_key(public.lead_event_type, text) to service_role;

revoke execute on function
  public.conversations_before_insert(),
  public.conversations_before_update(),
  public.conversations_after_insert(),
  public.conversations_after_update(),
  public.chat_messages_after_insert(),
  public.follow_up_tasks_before_write(),
  public.record_first_response(public.conversations, public.actor_type, text, text)
from public, anon, authenticated, service_role;

-- The admin's actions, one function each, called alike by the console (/admin and its JSON
-- API, as the service's role) and by TrueNester's panel through PostgREST (supabase-js
-- `rpc`, as an admin under row-level security). Each writes its timeline entry in the same
-- transaction, naming who acted:
--   through PostgREST: the JWT's sub (auth.uid()) and email;
--   through the service: the settings leadrelay.actor_id and leadrelay.actor_email, which the
--   console sets in the action's transaction (a Supabase user's id and email, or 'admin key').
-- The functions that only write what an admin may write under RLS are security invoker, so
-- RLS and the column grants guard them; the few that write the pipeline's own tables (the
-- replays) are security definer and check the caller first.

-- Refuses a caller that is neither an admin (JWT app_metadata.role = 'admin') nor the service.
-- current_setting('role') is the role PostgREST switched to, even inside a security definer
-- function, where current_user is the function's owner.
create or replace function public.admin_check()
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin' then
    return;
  end if;
  if current_user in ('anon', 'authenticated')
     or coalesce(current_setting('role', true), 'none') in ('anon', 'authenticated') then
    raise exception 'only an admin may do this' using errcode = '42501';
  end if;
end
$$;

-- Who is acting: the signed-in user (PostgREST), else whom the service names, else the system.
create or replace function public.admin_actor(out actor_id text, out actor_email text)
language sql
stable
set search_path = ''
as $$
  select coalesce((select auth.uid())::text, nullif(current_setting('leadrelay.actor_id', true), ''), 'system'),
         coalesce((select auth.jwt()) ->> 'email', nullif(current_setting('leadrelay.actor_email', true), ''));
$$;

-- The metadata every console entry carries about its actor.
create or replace function public.admin_actor_metadata()
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_strip_nulls(jsonb_build_object('actor_email', a.actor_email)) from public.admin_actor() a;
$$;

create or replace function public.admin_lead_exists(p_conversation_id uuid)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if not exists (select from public.conversations c where c.id = p_conversation_id) then
    raise exception 'lead % not found', p_conversation_id using errcode = 'P0002';
  end if;
end
$$;

-- Sets a lead's status. The conversations triggers write the "Status changed" entry, answer
-- the lead (contacted, qualified, converted) and cancel its follow-ups (closed, spam).
-- Returns whether the status changed.
create or replace function public.admin_set_status(p_conversation_id uuid, p_status public.conversation_status)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  update public.conversations c
     set status = p_status
   where c.id = p_conversation_id
     and c.status is distinct from p_status;
  return found;
end
$$;

-- Marks a new lead contacted (a human has talked to the customer): meets its SLA. A lead
-- past 'new' keeps its status. Returns whether it changed.
create or replace function public.admin_mark_contacted(p_conversation_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  update public.conversations c
     set status = 'contacted'
   where c.id = p_conversation_id
     and c.status = 'new';
  return found;
end
$$;

create or replace function public.admin_set_quality(p_conversation_id uuid, p_quality public.lead_quality)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  update public.conversations c
     set quality = p_quality
   where c.id = p_conversation_id
     and c.quality is distinct from p_quality;
  return found;
end
$$;

-- Assigns a lead to a user (a Supabase user id), or unassigns it (null). The entry is written
-- by conversations_after_assign, so a direct update through PostgREST writes it too.
create or replace function public.admin_assign(p_conversation_id uuid, p_assignee uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  update public.conversations c
     set assigned_to = p_assignee
   where c.id = p_conversation_id
     and c.assigned_to is distinct from p_assignee;
  return found;
end
$$;

-- A note on the lead's timeline. Returns the entry's id.
create or replace function public.admin_add_note(p_conversation_id uuid, p_body text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  entry_id uuid;
  who record;
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  if coalesce(btrim(p_body), '') = '' or char_length(p_body) > 2000 then
    raise exception 'a note is 1 to 2000 characters' using errcode = '22023';
  end if;
  select * into who from public.admin_actor();
  insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata)
  values (p_conversation_id, 'note', 'Note', btrim(p_body), 'agent', who.actor_id, public.admin_actor_metadata())
  returning id into entry_id;
  return entry_id;
end
$$;

-- An agent's answer to the customer: a chat message from the agent, which meets the SLA and
-- is written on the timeline (both by chat_messages_after_insert).
-- Returns the message's id.
create or replace function public.admin_reply(p_conversation_id uuid, p_body text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  message_id uuid;
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  if coalesce(btrim(p_body), '') = '' or char_length(p_body) > 5000 then
    raise exception 'a reply is 1 to 5000 characters' using errcode = '22023';
  end if;
  insert into public.chat_messages (conversation_id, sender_type, sender_id, content)
  values (p_conversation_id, 'agent', (select a.actor_id from public.admin_actor() a), btrim(p_body))
  returning id into message_id;
  return message_id;
end
$$;

-- Schedules a follow-up: due at p_follow_up_date, overdue after p_sla_deadline (default a
-- day later). Returns the task's id.
create or replace function public.admin_schedule_follow_up(
  p_conversation_id uuid,
  p_follow_up_date timestamptz,
  p_sla_deadline timestamptz default null,
  p_notes text default null,
  p_assignee uuid default null
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  task_id uuid;
begin
  perform public.admin_check();
  perform public.admin_lead_exists(p_conversation_id);
  if p_follow_up_date is null then
    raise exception 'a follow-up needs a date' using errcode = '22023';
  end if;
  if p_sla_deadline is not null and p_sla_deadline < p_follow_up_date then
    raise exception 'a follow-up''s deadline cannot come before its date' using errcode = '22023';
  end if;
  insert into public.follow_up_tasks (conversation_id, follow_up_date, sla_deadline, notes, assigned_to)
  values (p_conversation_id, p_follow_up_date, coalesce(p_sla_deadline, p_follow_up_date + interval '1 day'),
          nullif(btrim(p_notes), ''), p_assignee)
  returning id into task_id;
  return task_id;
end
$$;

-- Completes or cancels a follow-up that is still open (scheduled or overdue). Returns whether
-- it changed; a task already completed or cancelled is refused.
create or replace function public.admin_close_follow_up(p_task_id uuid, p_status public.follow_up_status)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  current_status public.follow_up_status;
begin
  perform public.admin_check();
  if p_status not in ('completed', 'cancelled') then
    raise exception 'a follow-up is closed as completed or cancelled, not %', p_status using errcode = '22023';
  end if;
  select f.status into current_status from public.follow_up_tasks f where f.id = p_task_id for update;
  if not found then
    raise exception 'follow-up % not found', p_task_id using errcode = 'P0002';
  end if;
  if current_status = p_status then
    return false;
  end if;
  if current_status not in ('scheduled', 'overdue') then
    -- PT409: PostgREST answers 409 Conflict, and so does the service (package dberr).
    raise exception 'follow-up % is already %', p_task_id, current_status using errcode = 'PT409';
  end if;
  update public.follow_up_tasks f set status = p_status where f.id = p_task_id;
  return true;
end
$$;

create or replace function public.admin_complete_follow_up(p_task_id uuid)
returns boolean
language sql
set search_path = ''
as $$
  select public.admin_close_follow_up(p_task_id, 'completed');
$$;

create or replace function public.admin_cancel_follow_up(p_task_id uuid)
returns boolean
language sql
set search_path = ''
as $$
  select public.admin_close_follow_up(p_task_id, 'cancelled');
$$;

-- Sends an event's failed channels again (public.replay_lead_event), as an admin. Security
-- definer: an admin cannot write deliveries under RLS. Returns the channels queued again.
create or replace function public.admin_replay_event(p_event_id uuid)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform public.admin_check();
  return public.replay_lead_event(p_event_id, now());
end
$$;

-- Sends every failed delivery again, or those of one channel. Returns the channels queued.
create or replace function public.admin_replay_failed(p_channel public.notification_channel default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  n integer;
begin
  perform public.admin_check();
  select coalesce(sum(public.replay_lead_event(f.id, now())), 0)::integer into n
    from (select distinct l.lead_event_id as id
            from public.notification_logs l
           where l.status = 'failed'
             and (p_channel is null or l.channel = p_channel)) f;
  return n;
end
$$;

-- The timeline entries of the changes that no other trigger writes, so a change made through
-- PostgREST is written as one made in the console: an assignment, a follow-up scheduled,
-- completed or cancelled, an agent's answer. Security definer: they write the timeline.
create or replace function public.conversations_after_assign()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  who record;
begin
  select * into who from public.admin_actor();
  insert into public.conversation_timeline (conversation_id, event_type, title, actor_type, actor_id, metadata)
  values (
    new.id,
    'assigned',
    case when new.assigned_to is null then 'Unassigned' else 'Assigned to ' || new.assigned_to end,
    case when who.actor_id = 'system' then 'system' else 'agent' end::public.actor_type,
    who.actor_id,
    jsonb_build_object('from', old.assigned_to, 'to', new.assigned_to) || public.admin_actor_metadata()
  );
  return null;
end
$$;

create or replace function public.follow_up_tasks_after_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  who record;
  kind public.timeline_event_type;
  title text;
begin
  if tg_op = 'INSERT' then
    kind := 'followup_scheduled';
    title := 'Follow-up scheduled for ' || to_char(new.follow_up_date at time zone 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
  elsif new.status = 'completed' then
    kind := 'followup_completed';
    title := 'Follow-up completed';
  elsif new.status = 'cancelled' then
    kind := 'followup_cancelled';
    title := 'Follow-up cancelled';
  else
    return null;
  end if;
  select * into who from public.admin_actor();
  insert into public.conversation_timeline (conversation_id, event_type, title, description, actor_type, actor_id, metadata)
  values (
    new.conversation_id,
    kind,
    title,
    left(new.notes, 2000),
    case when who.actor_id = 'system' then 'system' else 'agent' end::public.actor_type,
    who.actor_id,
    jsonb_build_object('follow_up_task_id', new.id, 'follow_up_date', new.follow_up_date, 'sla_deadline', new.sla_deadline)
      || public.admin_actor_metadata()
  );
  return null;
end
$$;

-- The console's doorbell: each timeline entry rings NOTIFY on 'leadrelay_console' with its
-- lead ({"conversation_ids": [id]}; identical notifications in a transaction are sent once).
-- A new lead's entries ('created') do not: the lead rings the outbox's own 'lead_events'
-- doorbell, which the console reads as "new lead", in the same transaction. A row trigger
-- with a WHEN clause: a statement trigger's transition table cost each new lead 6% of its
-- work (issue #14). No exception block: with this channel and a payload this size pg_notify
-- cannot fail when called (a full queue fails the commit, where no block would catch it), and
-- the block started a subtransaction for every entry (3% of a delivered lead's work).
-- Assigned, not PERFORMed: PERFORM would start an executor.
create or replace function public.conversation_timeline_console_doorbell()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  notified text;
begin
  notified := pg_notify('leadrelay_console', json_build_object('conversation_ids', array[new.conversation_id])::text)::text;
  return null;
end
$$;

create or replace trigger conversations_after_assign
  after update of assigned_to on public.conversations
  for each row
  when (old.assigned_to is distinct from new.assigned_to)
  execute function public.conversations_after_assign();

create or replace trigger follow_up_tasks_after_write
  after insert or update of status on public.follow_up_tasks
  for each row
  execute function public.follow_up_tasks_after_write();

-- An agent's reply is written to the timeline by chat_messages_after_insert (20_lead_triggers),
-- the one trigger on an agent's message; this file once had a second one.
drop trigger if exists chat_messages_after_agent_insert on public.chat_messages;
drop function if exists public.chat_messages_after_agent_insert();

-- Once a statement trigger with a transition table; a trigger cannot change its level in place.
drop trigger if exists conversation_timeline_console_doorbell on public.conversation_timeline;
create trigger conversation_timeline_console_doorbell
  after insert on public.conversation_timeline
  for each row
  when (new.event_type <> 'created')
  execute function public.conversation_timeline_console_doorbell();

-- Trigger functions are nobody's to call.
revoke execute on function
  public.conversations_after_assign(),
  public.follow_up_tasks_after_write(),
  public.conversation_timeline_console_doorbell()
from public, anon, authenticated, service_role;

-- The admin's actions: admins (through PostgREST) and the service; anon nothing.
revoke execute on function
  public.admin_check(),
  public.admin_actor(),
  public.admin_actor_metadata(),
  public.admin_lead_exists(uuid),
  public.admin_set_status(uuid, public.conversation_status),
  public.admin_mark_contacted(uuid),
  public.admin_set_quality(uuid, public.lead_quality),
  public.admin_assign(uuid, uuid),
  public.admin_add_note(uuid, text),
  public.admin_reply(uuid, text),
  public.admin_schedule_follow_up(uuid, timestamptz, timestamptz, text, uuid),
  public.admin_close_follow_up(uuid, public.follow_up_status),
  public.admin_complete_follow_up(uuid),
  public.admin_cancel_follow_up(uuid),
  public.admin_replay_event(uuid),
  public.admin_replay_failed(public.notification_channel)
from public, anon;

grant execute on function
  public.admin_check(),
  public.admin_actor(),
  public.admin_actor_metadata(),
  public.admin_lead_exists(uuid),
  public.admin_set_status(uuid, public.conversation_status),
  public.admin_mark_contacted(uuid),
  public.admin_set_quality(uuid, public.lead_quality),
  public.admin_assign(uuid, uuid),
  public.admin_add_note(uuid, text),
  public.admin_reply(uuid, text),
  public.admin_schedule_follow_up(uuid, timestamptz, timestamptz, text, uuid),
  public.admin_close_follow_up(uuid, public.follow_up_status),
  public.admin_complete_follow_up(uuid),
  public.admin_cancel_follow_up(uuid),
  public.admin_replay_event(uuid),
  public.admin_replay_failed(public.notification_channel)
to authenticated, service_role;

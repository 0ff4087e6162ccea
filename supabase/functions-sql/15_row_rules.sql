-- The row rules of the tables every lead writes (conversations, chat_messages, lead_events,
-- conversation_timeline): what their CHECK constraints said, checked by one BEFORE INSERT OR
-- UPDATE trigger per table. PostgreSQL 15 reads every CHECK constraint's expression back from
-- its stored text and plans it again for each INSERT or UPDATE statement; the 33 on these
-- tables were a fifth of the intake's work per lead (callgrind, issue #14). A trigger's rules are
-- compiled once per connection. Migration 20261130010000_intake_lighter_writes dropped the constraints.
--
-- The same contract as a CHECK constraint: a rule holds unless its expression is false (a null
-- passes), it sees the row after the other BEFORE triggers (a table's rules trigger is named
-- <table>_rules, which fires after its <table>_before_* triggers: triggers fire in name
-- order), and a broken rule raises check_violation (23514) naming the rule as the constraint,
-- with PostgreSQL's own message, so PostgREST and the service answer as before.

create or replace function leadrelay_private.raise_broken_rule(rel text, rule text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using
    errcode = 'check_violation',
    message = format('new row for relation "%s" violates check constraint "%s"', rel, rule),
    table = rel,
    schema = 'public',
    constraint = rule;
end
$$;

create or replace function public.conversations_rules()
returns trigger
language plpgsql
security definer -- the limits' functions are not every writer's to call
set search_path = ''
as $$
declare
  broken text := case
    when not (new.email is not null or new.phone is not null or new.phone_raw is not null) then 'conversations_contact_check'
    when not (new.form <> 'property_inquiry' or new.property_id is not null) then 'conversations_property_inquiry_check'
    when not (char_length(new.source) between 1 and public.lead_text_limit('source')) then 'conversations_source_check'
    when not (char_length(new.name) <= public.lead_text_limit('name')) then 'conversations_name_check'
    when not (char_length(new.email) <= public.lead_text_limit('email') and new.email like '_%@_%') then 'conversations_email_check'
    when not (char_length(new.phone) <= public.lead_text_limit('phone')) then 'conversations_phone_check'
    when not (char_length(new.phone_raw) <= public.lead_text_limit('phone_raw')) then 'conversations_phone_raw_check'
    when not (char_length(new.message) <= public.lead_text_limit('message')) then 'conversations_message_check'
    when not (char_length(new.session_id) <= public.lead_text_limit('session_id')) then 'conversations_session_id_check'
    when not (char_length(new.property_id) <= public.lead_text_limit('property_id')) then 'conversations_property_id_check'
    when not (char_length(new.property_title) <= public.lead_text_limit('property_title')) then 'conversations_property_title_check'
    when not (char_length(new.budget) <= public.lead_text_limit('budget')) then 'conversations_budget_check'
    when not (char_length(new.timeline) <= public.lead_text_limit('timeline')) then 'conversations_timeline_check'
    when not (char_length(new.financing) <= public.lead_text_limit('financing')) then 'conversations_financing_check'
    when not (char_length(new.idempotency_key) between 1 and public.lead_text_limit('idempotency_key')) then 'conversations_idempotency_key_check'
    when not (new.lead_score between 0 and 100) then 'conversations_lead_score_check'
    when not (jsonb_typeof(new.metadata) = 'object' and octet_length(new.metadata::text) <= public.intake_limit('object_bytes')) then 'conversations_metadata_check'
    when not (jsonb_typeof(new.device_info) = 'object' and octet_length(new.device_info::text) <= public.intake_limit('object_bytes')) then 'conversations_device_info_check'
    when not (new.sla_warning_at <= new.sla_response_deadline) then 'conversations_sla_warning_check'
    when not (new.sla_breached = (new.sla_breached_at is not null)) then 'conversations_sla_breached_check'
    when not (new.person_inquiry >= 1 and new.person_inquiries_24h between 1 and new.person_inquiry) then 'conversations_person_inquiry_check'
  end;
begin
  if broken is not null then
    perform leadrelay_private.raise_broken_rule(tg_table_name, broken);
  end if;
  return new;
end
$$;

create or replace function public.chat_messages_rules()
returns trigger
language plpgsql
security definer -- the limits' functions are not every writer's to call
set search_path = ''
as $$
declare
  broken text := case
    when not (char_length(new.content) between 1 and public.intake_limit('message_chars')) then 'chat_messages_content_check'
    when not (char_length(new.sender_id) <= 200) then 'chat_messages_sender_id_check'
    -- Finite and in this century (submit_lead says the same to the visitor).
    when not (new.sent_at >= '2000-01-01 00:00:00+00' and new.sent_at < '2100-01-01 00:00:00+00') then 'chat_messages_sent_at_range_check'
  end;
begin
  if broken is not null then
    perform leadrelay_private.raise_broken_rule(tg_table_name, broken);
  end if;
  return new;
end
$$;

create or replace function public.lead_events_rules()
returns trigger
language plpgsql
security definer -- the limits' functions are not every writer's to call
set search_path = ''
as $$
declare
  broken text := case
    when not (char_length(new.idempotency_key) between 1 and 300) then 'lead_events_idempotency_key_check'
    when not ((new.lease_owner is null) = (new.lease_expires_at is null)) then 'lead_events_lease_check'
    when not (jsonb_typeof(new.payload) = 'object') then 'lead_events_payload_check'
    when not (new.processed = (new.processed_at is not null)) then 'lead_events_processed_check'
    when not (new.retry_count >= 0) then 'lead_events_retry_count_check'
  end;
begin
  if broken is not null then
    perform leadrelay_private.raise_broken_rule(tg_table_name, broken);
  end if;
  return new;
end
$$;

create or replace function public.conversation_timeline_rules()
returns trigger
language plpgsql
security definer -- the limits' functions are not every writer's to call
set search_path = ''
as $$
declare
  broken text := case
    when not (char_length(new.title) between 1 and 200) then 'conversation_timeline_title_check'
    when not (char_length(new.description) <= 2000) then 'conversation_timeline_description_check'
    when not (char_length(new.actor_id) <= 200) then 'conversation_timeline_actor_id_check'
    when not (jsonb_typeof(new.metadata) = 'object') then 'conversation_timeline_metadata_check'
  end;
begin
  if broken is not null then
    perform leadrelay_private.raise_broken_rule(tg_table_name, broken);
  end if;
  return new;
end
$$;

create or replace trigger conversations_rules
  before insert or update on public.conversations
  for each row execute function public.conversations_rules();

create or replace trigger chat_messages_rules
  before insert or update on public.chat_messages
  for each row execute function public.chat_messages_rules();

create or replace trigger lead_events_rules
  before insert or update on public.lead_events
  for each row execute function public.lead_events_rules();

create or replace trigger conversation_timeline_rules
  before insert or update on public.conversation_timeline
  for each row execute function public.conversation_timeline_rules();

revoke execute on function
  leadrelay_private.raise_broken_rule(text, text),
  public.conversations_rules(),
  public.chat_messages_rules(),
  public.lead_events_rules(),
  public.conversation_timeline_rules()
from public, anon, authenticated, service_role;

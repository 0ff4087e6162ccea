-- The row rules of the tables every lead writes (conversations, chat_messages, lead_events,
-- conversation_timeline): what their CHECK constraints said, checked by one BEFORE INSERT OR
-- UPDATE trigger per table, <table>_rules, all running public.row_rules(). PostgreSQL 15 reads
-- every CHECK constraint's expression back from its stored text and plans it again for each
-- INSERT or UPDATE statement; the 33 on these tables were a fifth of the intake's work per lead
-- (callgrind, issue #14). A trigger's rules are compiled once per connection and table.
-- Migration 20261130010000_intake_lighter_writes dropped the constraints.
--
-- The same contract as a CHECK constraint: a rule holds unless its expression is false (a null
-- passes), it sees the row after the other BEFORE triggers (<table>_rules fires after the
-- table's <table>_before_* triggers: triggers fire in name order), and a broken rule raises
-- check_violation (23514) naming the rule as the constraint, with PostgreSQL's own message, so
-- PostgREST and the service answer as before. Security definer: the limits' functions are not
-- every writer's to call.
create or replace function public.row_rules()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  broken text;
begin
  -- One expression per table, so a table's call prepares only its own rules.
  if tg_table_name = 'conversations' then
    broken := case
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
  elsif tg_table_name = 'chat_messages' then
    broken := case
      when not (char_length(new.content) between 1 and public.intake_limit('message_chars')) then 'chat_messages_content_check'
      when not (char_length(new.sender_id) <= 200) then 'chat_messages_sender_id_check'
      -- Finite and in this century (submit_lead says the same to the visitor).
      when not (new.sent_at >= '2000-01-01 00:00:00+00' and new.sent_at < '2100-01-01 00:00:00+00') then 'chat_messages_sent_at_range_check'
    end;
  elsif tg_table_name = 'lead_events' then
    broken := case
      when not (char_length(new.idempotency_key) between 1 and 300) then 'lead_events_idempotency_key_check'
      when not ((new.lease_owner is null) = (new.lease_expires_at is null)) then 'lead_events_lease_check'
      when not (jsonb_typeof(new.payload) = 'object') then 'lead_events_payload_check'
      when not (new.processed = (new.processed_at is not null)) then 'lead_events_processed_check'
      when not (new.retry_count >= 0) then 'lead_events_retry_count_check'
    end;
  elsif tg_table_name = 'conversation_timeline' then
    broken := case
      when not (char_length(new.title) between 1 and 200) then 'conversation_timeline_title_check'
      when not (char_length(new.description) <= 2000) then 'conversation_timeline_description_check'
      when not (char_length(new.actor_id) <= 200) then 'conversation_timeline_actor_id_check'
      when not (jsonb_typeof(new.metadata) = 'object') then 'conversation_timeline_metadata_check'
    end;
  else
    raise exception 'row_rules() has no rules for %', tg_table_name;
  end if;
  if broken is not null then
    raise exception using
      errcode = 'check_violation',
      message = format('new row for relation "%s" violates check constraint "%s"', tg_table_name, broken),
      table = tg_table_name,
      schema = tg_table_schema,
      constraint = broken;
  end if;
  return new;
end
$$;

create or replace trigger conversations_rules
  before insert or update on public.conversations
  for each row execute function public.row_rules();

create or replace trigger chat_messages_rules
  before insert or update on public.chat_messages
  for each row execute function public.row_rules();

create or replace trigger lead_events_rules
  before insert or update on public.lead_events
  for each row execute function public.row_rules();

create or replace trigger conversation_timeline_rules
  before insert or update on public.conversation_timeline
  for each row execute function public.row_rules();

-- The first form of these rules: a function per table and a helper that raised.
drop function if exists public.conversations_rules(), public.chat_messages_rules(), public.lead_events_rules(),
  public.conversation_timeline_rules(), leadrelay_private.raise_broken_rule(text, text);

revoke execute on function public.row_rules() from public, anon, authenticated, service_role;

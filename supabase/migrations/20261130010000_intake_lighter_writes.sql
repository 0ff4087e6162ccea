-- The CHECK constraints of the tables every lead writes become row rules checked by one
-- trigger per table (supabase/functions-sql/15_row_rules.sql, re-applied after this file):
-- PostgreSQL 15 reads each CHECK expression back from text and plans it again on every
-- INSERT and UPDATE statement, a fifth of the intake's work per lead (issue #14). The rules,
-- their names and their error (23514, the rule named as the constraint) are unchanged.
alter table public.conversations
  drop constraint conversations_contact_check,
  drop constraint conversations_property_inquiry_check,
  drop constraint conversations_source_check,
  drop constraint conversations_name_check,
  drop constraint conversations_email_check,
  drop constraint conversations_phone_check,
  drop constraint conversations_phone_raw_check,
  drop constraint conversations_message_check,
  drop constraint conversations_session_id_check,
  drop constraint conversations_property_id_check,
  drop constraint conversations_property_title_check,
  drop constraint conversations_budget_check,
  drop constraint conversations_timeline_check,
  drop constraint conversations_financing_check,
  drop constraint conversations_idempotency_key_check,
  drop constraint conversations_lead_score_check,
  drop constraint conversations_metadata_check,
  drop constraint conversations_device_info_check,
  drop constraint conversations_sla_warning_check,
  drop constraint conversations_sla_breached_check,
  drop constraint conversations_person_inquiry_check;
alter table public.chat_messages
  drop constraint chat_messages_content_check,
  drop constraint chat_messages_sender_id_check,
  drop constraint chat_messages_sent_at_range_check;
alter table public.lead_events
  drop constraint lead_events_idempotency_key_check,
  drop constraint lead_events_lease_check,
  drop constraint lead_events_payload_check,
  drop constraint lead_events_processed_check,
  drop constraint lead_events_retry_count_check;
alter table public.conversation_timeline
  drop constraint conversation_timeline_title_check,
  drop constraint conversation_timeline_description_check,
  drop constraint conversation_timeline_actor_id_check,
  drop constraint conversation_timeline_metadata_check;

-- No query reads lead_events by available_at among the unprocessed events: the dispatcher
-- opens by lead_events_unopened_idx and the metrics read lead_events_waiting_created_idx.
-- One index entry fewer per event.
drop index if exists public.lead_events_due_idx;

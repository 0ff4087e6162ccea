-- The lead pipeline's tables. Triggers and functions live in supabase/functions-sql (applied
-- after the migrations), so nothing here may call them.

create type public.lead_quality as enum ('hot', 'warm', 'cold');
create type public.lead_form as enum ('contact_form', 'property_inquiry', 'chatbot');
create type public.conversation_status as enum ('new', 'contacted', 'qualified', 'converted', 'closed', 'spam');
create type public.sender_type as enum ('customer', 'bot', 'agent', 'system');
create type public.lead_event_type as enum (
  'lead.created',
  'lead.updated',
  'lead.status_changed',
  'lead.responded',
  'sla.warning',
  'sla.breached',
  'followup.due',
  'followup.overdue',
  'notification.sent',
  'notification.failed'
);
create type public.actor_type as enum ('system', 'agent', 'customer', 'bot');
create type public.timeline_event_type as enum (
  'created',
  'status_changed',
  'quality_changed',
  'first_response',
  'message',
  'notification_sent',
  'notification_failed',
  'sla_warning',
  'sla_breached',
  'followup_due',
  'followup_overdue',
  'note'
);
create type public.follow_up_status as enum ('scheduled', 'completed', 'overdue', 'cancelled');
create type public.notification_channel as enum ('slack', 'email', 'telegram', 'whatsapp', 'sms', 'crm');
create type public.notification_status as enum ('pending', 'sent', 'delivered', 'failed');

-- The response window per lead quality: the only place the SLA durations are written down.
-- A lead is warned least(warn_before, response_window / 2) before its deadline, so a window
-- shorter than warn_before is warned halfway through instead of at birth.
create table public.sla_policies (
  quality public.lead_quality primary key,
  response_window interval not null check (response_window > interval '0'),
  warn_before interval not null check (warn_before >= interval '0'),
  updated_at timestamptz not null default now()
);

insert into public.sla_policies (quality, response_window, warn_before) values
  ('hot', interval '15 minutes', interval '30 minutes'),
  ('warm', interval '1 hour', interval '30 minutes'),
  ('cold', interval '24 hours', interval '30 minutes');

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  form public.lead_form not null,
  source text not null default 'website',
  name text,
  email text,
  phone text,
  message text,
  session_id text,
  property_id text,
  property_title text,
  budget text,
  timeline text,
  financing text,
  status public.conversation_status not null default 'new',
  -- Set by the insert trigger from the signals (or the chatbot's stated quality).
  quality public.lead_quality not null,
  lead_score integer not null,
  score_reasons text[] not null default '{}',
  metadata jsonb not null default '{}',
  device_info jsonb not null default '{}',
  idempotency_key text unique,
  -- Hash of form + contact + message: finds a resubmission without an idempotency key.
  dedup_key text,
  assigned_to uuid,
  first_response_at timestamptz,
  -- Set by the insert trigger from sla_policies; the SLA engine sends a warning and a breach
  -- once each and records that it did in sla_warning_sent_at and sla_breached_at.
  sla_response_deadline timestamptz not null,
  sla_warning_at timestamptz not null,
  sla_warning_sent_at timestamptz,
  sla_breached boolean not null default false,
  sla_breached_at timestamptz,
  closed_at timestamptz,
  constraint conversations_contact_check check (email is not null or phone is not null),
  constraint conversations_property_inquiry_check check (form <> 'property_inquiry' or property_id is not null),
  constraint conversations_source_check check (char_length(source) between 1 and 100),
  constraint conversations_name_check check (char_length(name) <= 200),
  constraint conversations_email_check check (char_length(email) <= 254 and email like '_%@_%'),
  constraint conversations_phone_check check (char_length(phone) <= 32),
  constraint conversations_message_check check (char_length(message) <= 5000),
  constraint conversations_session_id_check check (char_length(session_id) <= 200),
  constraint conversations_property_id_check check (char_length(property_id) <= 300),
  constraint conversations_property_title_check check (char_length(property_title) <= 300),
  constraint conversations_budget_check check (char_length(budget) <= 300),
  constraint conversations_timeline_check check (char_length(timeline) <= 300),
  constraint conversations_financing_check check (char_length(financing) <= 300),
  constraint conversations_idempotency_key_check check (char_length(idempotency_key) between 1 and 200),
  constraint conversations_lead_score_check check (lead_score between 0 and 100),
  constraint conversations_metadata_check check (jsonb_typeof(metadata) = 'object' and octet_length(metadata::text) <= 8192),
  constraint conversations_device_info_check check (jsonb_typeof(device_info) = 'object' and octet_length(device_info::text) <= 8192),
  constraint conversations_sla_warning_check check (sla_warning_at <= sla_response_deadline),
  constraint conversations_sla_breached_check check (sla_breached = (sla_breached_at is not null))
);

-- The admin panel's lists: newest first, by status, by assignee.
create index conversations_created_at_idx on public.conversations (created_at desc);
create index conversations_status_created_at_idx on public.conversations (status, created_at desc);
create index conversations_assigned_to_idx on public.conversations (assigned_to, created_at desc) where assigned_to is not null;
create index conversations_session_id_idx on public.conversations (session_id) where session_id is not null;
-- The intake's duplicate window.
create index conversations_dedup_key_idx on public.conversations (dedup_key, created_at desc);
-- The SLA engine's scans: unanswered, open leads whose warning or deadline has come.
create index conversations_sla_warning_due_idx on public.conversations (sla_warning_at)
  where first_response_at is null and sla_warning_sent_at is null and not sla_breached
    and status not in ('closed', 'spam');
create index conversations_sla_breach_due_idx on public.conversations (sla_response_deadline)
  where first_response_at is null and not sla_breached and status not in ('closed', 'spam');

create table public.chat_messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  -- Messages saved in one statement share a timestamp; seq keeps their order.
  seq bigint generated always as identity,
  sender_type public.sender_type not null,
  sender_id text,
  content text not null,
  sent_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  constraint chat_messages_content_check check (char_length(content) between 1 and 5000),
  constraint chat_messages_sender_id_check check (char_length(sender_id) <= 200)
);

create index chat_messages_conversation_id_seq_idx on public.chat_messages (conversation_id, seq);

create table public.follow_up_tasks (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  status public.follow_up_status not null default 'scheduled',
  follow_up_date timestamptz not null,
  sla_deadline timestamptz,
  sla_breached boolean not null default false,
  due_notified_at timestamptz,
  overdue_at timestamptz,
  completed_at timestamptz,
  assigned_to uuid,
  notes text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint follow_up_tasks_sla_deadline_check check (sla_deadline >= follow_up_date),
  constraint follow_up_tasks_notes_check check (char_length(notes) <= 5000)
);

create index follow_up_tasks_conversation_id_idx on public.follow_up_tasks (conversation_id, follow_up_date);
create index follow_up_tasks_assigned_to_idx on public.follow_up_tasks (assigned_to, follow_up_date) where assigned_to is not null;
-- The follow-up jobs' scans: scheduled tasks that have come due, or passed their deadline.
create index follow_up_tasks_due_idx on public.follow_up_tasks (follow_up_date)
  where status = 'scheduled' and due_notified_at is null;
create index follow_up_tasks_overdue_idx on public.follow_up_tasks (sla_deadline)
  where status = 'scheduled' and not sla_breached;

-- The outbox. A row is the truth that something must be announced; the doorbell only hurries
-- the dispatcher, which claims due rows (available_at) under a lease.
create table public.lead_events (
  id uuid primary key default gen_random_uuid(),
  event_type public.lead_event_type not null,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  follow_up_task_id uuid references public.follow_up_tasks (id) on delete cascade,
  payload jsonb not null default '{}',
  processed boolean not null default false,
  processed_at timestamptz,
  retry_count integer not null default 0,
  idempotency_key text not null unique,
  available_at timestamptz not null default now(),
  lease_owner text,
  lease_expires_at timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  constraint lead_events_payload_check check (jsonb_typeof(payload) = 'object'),
  constraint lead_events_processed_check check (processed = (processed_at is not null)),
  constraint lead_events_retry_count_check check (retry_count >= 0),
  constraint lead_events_idempotency_key_check check (char_length(idempotency_key) between 1 and 300),
  constraint lead_events_lease_check check ((lease_owner is null) = (lease_expires_at is null))
);

create index lead_events_due_idx on public.lead_events (available_at) where not processed;
create index lead_events_conversation_id_idx on public.lead_events (conversation_id, created_at);
create index lead_events_follow_up_task_id_idx on public.lead_events (follow_up_task_id) where follow_up_task_id is not null;

create table public.conversation_timeline (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  event_type public.timeline_event_type not null,
  title text not null,
  description text,
  actor_type public.actor_type not null default 'system',
  actor_id text,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  constraint conversation_timeline_title_check check (char_length(title) between 1 and 200),
  constraint conversation_timeline_description_check check (char_length(description) <= 2000),
  constraint conversation_timeline_actor_id_check check (char_length(actor_id) <= 200),
  constraint conversation_timeline_metadata_check check (jsonb_typeof(metadata) = 'object')
);

create index conversation_timeline_conversation_id_idx on public.conversation_timeline (conversation_id, created_at);

-- One row per event and channel: each channel is its own delivery with its own retries.
create table public.notification_logs (
  id uuid primary key default gen_random_uuid(),
  lead_event_id uuid not null references public.lead_events (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  channel public.notification_channel not null,
  status public.notification_status not null default 'pending',
  attempts integer not null default 0,
  next_attempt_at timestamptz,
  last_error text,
  provider_response text,
  sent_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint notification_logs_event_channel_key unique (lead_event_id, channel),
  constraint notification_logs_attempts_check check (attempts >= 0)
);

create index notification_logs_conversation_id_idx on public.notification_logs (conversation_id, created_at);
-- Deliveries waiting for their next attempt.
create index notification_logs_retry_due_idx on public.notification_logs (next_attempt_at) where status = 'pending';

-- Settings that must never reach the API: the webhook receiver's URL and, off Supabase (where
-- Vault holds it), the webhook secret. Not in an exposed schema; no API role may use it.
create schema leadrelay_private;
revoke all on schema leadrelay_private from public, anon, authenticated, service_role;

create table leadrelay_private.settings (
  key text primary key,
  value text not null,
  constraint settings_key_check check (key in ('webhook_url', 'webhook_secret'))
);

revoke all on leadrelay_private.settings from public, anon, authenticated, service_role;

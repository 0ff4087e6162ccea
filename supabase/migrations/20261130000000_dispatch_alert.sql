-- One definition of what the dispatcher is handed: claim_deliveries (a delivery: its log row,
-- channel and attempt) and claim_console_events (an event and the channels production would
-- use) returned the same alert columns, declared twice. Both now return public.dispatch_alert,
-- each leaving the other's columns null. A function's return type cannot be replaced, so both
-- are dropped here; supabase/functions-sql/60_delivery.sql creates them again.
drop function if exists public.claim_deliveries(text, interval, public.notification_channel[], integer[], timestamptz);
drop function if exists public.claim_console_events(integer, timestamptz);

create type public.dispatch_alert as (
  log_id uuid,                                -- a delivery's notification_logs row
  lead_event_id uuid,
  channel public.notification_channel,        -- a delivery's channel
  channels public.notification_channel[],     -- the console: every channel the event is routed to
  attempt integer,                            -- a delivery's attempt: the fencing token of its outcome
  repeat boolean,                             -- the previous attempt was cut off: this one may repeat it
  event_type public.lead_event_type,
  conversation_id uuid,
  form public.lead_form,
  source text,
  name text,
  email text,
  phone text,
  property_id text,
  property_title text,
  quality public.lead_quality,
  score_reasons text[],
  sla_response_deadline timestamptz,
  follow_up_date timestamptz
);

-- Per-delivery bookkeeping (issues #8 and #14). The dispatcher no longer leases whole events
-- for a round: it opens an event's deliveries once (one notification_logs row per routed,
-- configured channel), then claims deliveries one by one, each under a lease of its own, just
-- before it sends them, and records each outcome as soon as it is known. A crash therefore
-- costs only the sends that were in flight, and the next owner knows which those were.

-- When the event's deliveries were opened; null while the dispatcher has not seen it. The
-- partial index is the queue of events still to open: an event enters it once and leaves it
-- once, so its dead entries never outnumber the events opened since the last vacuum.
alter table public.lead_events add column deliveries_opened_at timestamptz;
update public.lead_events e
   set deliveries_opened_at = coalesce(e.processed_at, e.created_at)
 where e.processed
    or exists (select from public.notification_logs l where l.lead_event_id = e.id);
create index lead_events_unopened_idx on public.lead_events (available_at) where deliveries_opened_at is null;

-- A delivery's lease: who is sending its current attempt, and until when. attempts now
-- counts attempts started (a claim increments it), so it doubles as the fencing token: an
-- outcome is recorded only for the attempt that is still the delivery's latest, whoever
-- reports it, and a delivery still leased when its lease runs out was cut off mid-send (its
-- next attempt may repeat a message that went out).
alter table public.notification_logs
  add column lease_owner text,
  add column lease_expires_at timestamptz,
  add column fallback_for public.notification_channel,
  add constraint notification_logs_lease_check check ((lease_owner is null) = (lease_expires_at is null)),
  add constraint notification_logs_lease_pending_check check (lease_owner is null or status = 'pending');
comment on column public.notification_logs.fallback_for is
  'The channel that gave up on this event, when this delivery is its fallback.';

-- The claim reads one channel's due deliveries in order. The old index (next_attempt_at
-- alone) was also what finish_deliveries' per-event lookups fell into, reading every pending
-- entry, dead ones included, for each event; per-event lookups now go through the
-- (lead_event_id, channel) key.
drop index public.notification_logs_retry_due_idx;
create index notification_logs_due_idx on public.notification_logs (channel, next_attempt_at) where status = 'pending';

-- Room on each page for a claim's update (lease and attempt, no indexed column) to stay a
-- heap-only tuple: no new index entries, no dead ones for the next claim to step over.
alter table public.notification_logs set (fillfactor = 80);

-- Fallback channels: when a route's channel gives up on an alert for good, the alert goes to
-- these (those configured, and not already delivering the event), so a person still hears
-- of the lead.
alter table public.notification_routes
  add column fallback public.notification_channel[] not null default '{}',
  add constraint notification_routes_fallback_check check (not (channel = any (fallback)));
update public.notification_routes set fallback = '{email}' where channel in ('slack', 'telegram', 'whatsapp', 'sms');
update public.notification_routes set fallback = '{slack}' where channel = 'email';

-- Replica identity. The admin panel reads update events of conversations (a status, an SLA
-- flag, a quality: it compares the old row with the new) and of follow_up_tasks (status,
-- overdue). Of lead_events and notification_logs it needs only the new row (an event
-- processed, a delivery's status and error): their updates are mostly the dispatcher's
-- bookkeeping (opened, leased, attempted), and a full identity wrote every old row into the
-- WAL for each of them (14% more WAL per delivery under wal_level=logical). The default
-- identity still sends the whole new row and the primary key of the old.
alter table public.lead_events replica identity default;
alter table public.notification_logs replica identity default;

-- The round-based functions this replaces.
drop function if exists public.claim_lead_events(text, interval, integer, timestamptz);
drop function if exists public.start_deliveries(uuid[], public.notification_channel[], timestamptz);
drop function if exists public.finish_deliveries(text, uuid[], jsonb, timestamptz);

-- Which channels each event type is announced on. The dispatcher delivers an event to the
-- routed channels that are configured on the service; an event type with no route is done
-- as soon as it is claimed.
create table public.notification_routes (
  event_type public.lead_event_type not null,
  channel public.notification_channel not null,
  primary key (event_type, channel)
);

insert into public.notification_routes (event_type, channel) values
  ('lead.created', 'slack'),
  ('lead.created', 'email'),
  ('lead.created', 'telegram'),
  ('lead.created', 'whatsapp'),
  ('lead.created', 'sms'),
  ('lead.created', 'crm'),
  ('sla.warning', 'slack'),
  ('sla.warning', 'telegram'),
  ('sla.breached', 'slack'),
  ('sla.breached', 'telegram'),
  ('sla.breached', 'email'),
  ('followup.overdue', 'slack');

alter table public.notification_routes enable row level security;

create policy "admins read notification routes" on public.notification_routes
  for select to authenticated
  using (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');

revoke insert, update, delete, truncate, references, trigger on public.notification_routes from anon, authenticated;

-- The failed deliveries `leadrelay replay --failed` resends. (An event's own deliveries are
-- found through the (lead_event_id, channel) key.)
create index notification_logs_failed_idx on public.notification_logs (lead_event_id) where status = 'failed';

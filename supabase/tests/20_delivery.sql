-- The delivery functions' bookkeeping: claims bounded per channel, outcomes fenced by the
-- attempt, cut-off attempts noted as possible repeats, releases, fallbacks, and an event
-- processed when its last delivery ends. Time is passed in, so nothing waits for a clock.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(16);

insert into conversations (id, form, name, email) values
  ('30000000-0000-0000-0000-000000000001', 'contact_form', 'One', 'one@example.com'),
  ('30000000-0000-0000-0000-000000000002', 'contact_form', 'Two', 'two@example.com'),
  ('30000000-0000-0000-0000-000000000003', 'contact_form', 'Three', 'three@example.com');

select is(open_lead_events('{slack,telegram}', 10, now() + interval '1 second'), 3, 'three new events are opened');
select is((select count(*)::int from notification_logs where status = 'pending'), 6, 'one delivery per routed, configured channel');
select is(open_lead_events('{slack,telegram}', 10, now() + interval '1 second'), 0, 'an opened event is not opened again');

create temp table claimed as
select * from claim_deliveries('a', '1 minute', '{slack,telegram}', '{3,1}', now() + interval '1 second');
select is((select count(*)::int from claimed), 4, 'a claim takes no more than each channel''s limit');
select is((select count(*)::int from claimed where channel = 'telegram'), 1, 'one Telegram delivery of three, as asked');
select ok((select bool_and(attempt = 1 and not repeat) from claimed), 'first attempts, no repeats');

-- A late outcome after another owner took the delivery over changes nothing.
create temp table taken as
select * from claim_deliveries('b', '1 minute', '{slack}', '{1}', now() + interval '2 minutes');
select is((select attempt from taken), 2, 'the delivery is taken over after the lease, on attempt 2');
select ok((select repeat from taken), 'the takeover says the attempt may repeat one that went out');
select is((select count(*)::int from conversation_timeline where title = 'Slack alert may go out twice'), 1,
  'the timeline says so');
select is(
  record_deliveries(jsonb_build_array(jsonb_build_object('log_id', (select log_id from taken), 'attempt', 1, 'status', 'sent')),
                    '{slack,telegram}', now() + interval '3 minutes'),
  0, 'the first owner''s late outcome is not recorded');

-- A late outcome with nobody else on the delivery is recorded, lease or no lease.
select is(
  record_deliveries(jsonb_build_array(jsonb_build_object(
      'log_id', (select log_id from claimed where channel = 'slack' and log_id <> (select log_id from taken) limit 1), 'attempt', 1, 'status', 'sent')),
    '{slack,telegram}', now() + interval '10 minutes'),
  1, 'an outcome after the lease ran out, with no takeover, is recorded');

-- A release hands a delivery back unstarted: attempt 0, no lease, no repeat when claimed again.
select is(release_deliveries('a', array(select log_id from claimed where channel = 'telegram'), '{1}'), 1, 'the release hands it back');
select is((select attempt from claim_deliveries('c', '1 minute', '{telegram}', '{1}', now() + interval '11 minutes')
            where log_id = (select log_id from claimed where channel = 'telegram')), 1,
  'claimed again, it is attempt 1, not a repeat');

-- Slack gives up on an event: its route's fallback (email) is opened when email is configured.
select is(
  record_deliveries(jsonb_build_array(jsonb_build_object('log_id', (select log_id from taken), 'attempt', 2, 'status', 'failed', 'error', 'channel_not_found')),
    '{slack,telegram,email}', now() + interval '12 minutes'),
  1, 'the takeover''s outcome is recorded');
select is((select fallback_for::text from notification_logs where lead_event_id = (select lead_event_id from taken) and channel = 'email'), 'slack',
  'an email delivery is opened as Slack''s fallback');

-- The event is processed once its last delivery (Telegram, then the email fallback) ends.
create temp table last_ones as
select * from claim_deliveries('d', '1 minute', '{telegram,email}', '{5,5}', now() + interval '13 minutes');
select record_deliveries(jsonb_agg(jsonb_build_object('log_id', log_id, 'attempt', attempt, 'status', 'sent')), '{slack,telegram,email}', now() + interval '13 minutes')
  from last_ones;
select ok((select processed from lead_events where id = (select lead_event_id from taken)),
  'the event is processed when its last delivery ends');

select * from finish();
rollback;

-- Replicas configured differently: an event is opened, and a give-up's fallbacks added, for
-- the channels of every replica seen within the window (announce_replica), while each
-- replica claims only its own; a delivery whose channel no live replica has ends failed,
-- visibly, once due for unserved_grace() (an hour), and a replay brings it back. Time is passed in.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(18);

-- Replica a has Slack; replica b has Slack and Telegram.
select announce_replica('a', '{slack}', now());
select announce_replica('b', '{slack,telegram}', now());

insert into conversations (id, form, name, email) values
  ('21000000-0000-0000-0000-000000000001', 'contact_form', 'One', 'one@example.com'),
  ('21000000-0000-0000-0000-000000000003', 'contact_form', 'Three', 'three@example.com'),
  ('21000000-0000-0000-0000-000000000004', 'contact_form', 'Four', 'four@example.com'),
  ('21000000-0000-0000-0000-000000000005', 'contact_form', 'Five', 'five@example.com');
create temp view deliveries as
select l.*, e.conversation_id::text as lead from notification_logs l join lead_events e on e.id = l.lead_event_id;
grant select on deliveries to public;

select is(open_lead_events('{slack}', 10, now() + interval '1 second'), 4, 'replica a opens the four new events');
select is((select string_agg(channel::text, ',' order by channel) from deliveries where lead = '21000000-0000-0000-0000-000000000001'),
  'slack,telegram', 'an event a opens gets a Telegram delivery too, which only b can send');

create temp table a_claimed as select * from claim_deliveries('a', '1 minute', '{slack}', '{10}', now() + interval '1 second');
select is((select string_agg(distinct channel::text, ',') || ' x' || count(*) from a_claimed), 'slack x4', 'a claims only Slack');
create temp table b_claimed as select * from claim_deliveries('b', '1 minute', '{slack,telegram}', '{10,10}', now() + interval '1 second');
select is((select string_agg(distinct channel::text, ',') || ' x' || count(*) from b_claimed), 'telegram x4', 'b claims the Telegram deliveries');

-- b's first Telegram attempt for lead One fails for now: retried at +100 s. Then b is gone.
select record_deliveries(jsonb_build_array(jsonb_build_object(
    'log_id', (select log_id from b_claimed c join lead_events e on e.id = c.lead_event_id where e.conversation_id = '21000000-0000-0000-0000-000000000001'),
    'attempt', 1, 'status', 'pending', 'error', 'timeout', 'next_attempt_at', now() + interval '100 seconds')),
  '{slack,telegram}', now() + interval '2 seconds');

-- Two minutes on, a is live and b was last seen longer ago than the window.
select announce_replica('a', '{slack}', now() + interval '2 minutes');
insert into conversations (id, form, name, email) values ('21000000-0000-0000-0000-000000000002', 'contact_form', 'Two', 'two@example.com');
set local role service_role; -- as the service may call it
select is(open_lead_events('{slack}', 10, now() + interval '2 minutes'), 1, 'a opens the next event');
reset role;
select is((select string_agg(channel::text, ',') from deliveries where lead = '21000000-0000-0000-0000-000000000002'),
  'slack', 'a replica seen longer ago than the window no longer widens the channels an event is opened for');

-- Replica c has only email, the fallback of Slack: a's give-up on Slack opens it.
select announce_replica('c', '{email}', now() + interval '2 minutes');
select is(
  record_deliveries(jsonb_build_array(jsonb_build_object(
      'log_id', (select log_id from a_claimed c join lead_events e on e.id = c.lead_event_id where e.conversation_id = '21000000-0000-0000-0000-000000000001'),
      'attempt', 1, 'status', 'failed', 'error', 'channel_not_found')),
    '{slack}', now() + interval '2 minutes'),
  1, 'a records Slack giving up on lead One');
select is((select fallback_for::text from deliveries where lead = '21000000-0000-0000-0000-000000000001' and channel = 'email'), 'slack',
  'its email fallback is opened, a channel only c has');

-- An hour on, Telegram still has no live replica: deliveries due for longer than the grace
-- end failed, a limit at a time; lead One's retry, due for 59 min 20 s, waits.
select announce_replica('a', '{slack}', now() + interval '1 hour 1 minute');
select announce_replica('c', '{email}', now() + interval '1 hour 1 minute');
select is(fail_unserved_deliveries('{slack}', 2, now() + interval '1 hour 1 minute'), 2, 'two of the three stranded Telegram deliveries fail, as limited');
select is(fail_unserved_deliveries('{slack}', 2, now() + interval '1 hour 1 minute'), 1, 'then the third');
select is(fail_unserved_deliveries('{slack}', 2, now() + interval '1 hour 1 minute'), 0, 'a delivery due for less than the grace is left');
select is((select count(*)::int from deliveries where channel = 'telegram' and status = 'failed'
            and last_error = 'no live replica has Telegram (none seen for 60 s; the live ones have Slack, Email): replay it once a replica has Telegram'), 3,
  'each says why and what to do');
select is((select count(*)::int from conversation_timeline where title = 'Telegram failed after 1 attempt'), 3, 'the timeline shows each');
select is(fail_unserved_deliveries('{slack}', 2, now() + interval '1 hour 1 minute 50 seconds'), 1, 'an hour after its retry came due, lead One''s fails too');

-- A replay brings one back; b, live again, sends it.
select is(replay_lead_event((select id from lead_events where conversation_id = '21000000-0000-0000-0000-000000000003'), now() + interval '1 hour 2 minutes'), 1,
  'the replay queues the Telegram delivery again');
select announce_replica('b', '{slack,telegram}', now() + interval '1 hour 2 minutes');
select is((select string_agg(e.conversation_id::text, ',') from claim_deliveries('b', '1 minute', '{telegram}', '{10}', now() + interval '1 hour 2 minutes') c
            join lead_events e on e.id = c.lead_event_id),
  '21000000-0000-0000-0000-000000000003', 'b, back, claims it');

-- Replicas not seen for a window are forgotten when another announces itself.
select announce_replica('a', '{slack}', now() + interval '1 hour 10 minutes');
select is((select string_agg(replica, ',') from leadrelay_private.replica_channels), 'a', 'only the replica seen within the window is kept');

-- A delivery ended before any attempt says so on the timeline, not "after 0 attempts".
insert into conversations (id, form, name, email) values ('21000000-0000-0000-0000-000000000006', 'contact_form', 'Six', 'six@example.com');
select announce_replica('b', '{slack,telegram}', now() + interval '1 hour 11 minutes');
select open_lead_events('{slack}', 10, now() + interval '1 hour 11 minutes');
select announce_replica('a', '{slack}', now() + interval '2 hours 12 minutes');
select fail_unserved_deliveries('{slack}', 10, now() + interval '2 hours 12 minutes');
select results_eq(
  $$select title from conversation_timeline
     where conversation_id = '21000000-0000-0000-0000-000000000006' and event_type = 'notification_failed'$$,
  $$values ('Telegram alert not sent')$$,
  'a Telegram delivery no replica ever tried is "Telegram alert not sent"');

select * from finish();
rollback;

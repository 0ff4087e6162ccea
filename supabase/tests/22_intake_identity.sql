-- A lead is one inquiry (issue #9): only a true replay is the same lead; a returning person is
-- linked, not merged; an idempotency key names one request. And the RPC's own limits (#11):
-- payload size, per-client rate limit for the API roles.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(41);

create function pg_temp.lead_error(payload jsonb) returns jsonb
language plpgsql as $$
declare
  state text;
  message text;
  detail text;
begin
  perform public.submit_lead(payload);
  return null;
exception when others then
  get stacked diagnostics state = returned_sqlstate, message = message_text, detail = pg_exception_detail;
  return jsonb_build_object('sqlstate', state, 'message', message, 'detail', detail::jsonb);
end
$$;

-- Two inquiries from one email: two leads, one person.
create temp table inquiries as
select submit_lead('{"form": "property_inquiry", "name": "Lina", "email": "lina@example.com", "property_id": "villa-42"}') as villa,
       submit_lead('{"form": "property_inquiry", "name": "Lina", "email": "lina@example.com", "property_id": "apt-77", "budget": "AED 2M"}') as apt;
select results_eq(
  $$select (villa ->> 'created')::boolean, (apt ->> 'created')::boolean, villa ->> 'id' <> apt ->> 'id' from inquiries$$,
  $$values (true, true, true)$$,
  'a second inquiry from the same email about another property is a new lead (201)'
);
select results_eq(
  $$select c.property_id, c.budget, c.person_inquiry, c.person_inquiries_24h
      from inquiries join conversations c on c.id in ((villa ->> 'id')::uuid, (apt ->> 'id')::uuid)
     order by c.person_inquiry$$,
  $$values ('villa-42', null, 1, 1), ('apt-77', 'AED 2M', 2, 2)$$,
  'both inquiries are saved, each with its own property and budget'
);
select is(
  (select count(distinct c.person_id)::int from inquiries join conversations c
     on c.id in ((villa ->> 'id')::uuid, (apt ->> 'id')::uuid) where c.person_id is not null),
  1, 'both leads carry the same person_id'
);
select results_eq(
  $$select t.title, t.description, t.metadata -> 'earlier_lead_ids' ->> 0
      from inquiries join conversation_timeline t on t.conversation_id = (apt ->> 'id')::uuid
     where t.title like 'Returning%'$$,
  $$select 'Returning lead: 2nd inquiry in 24 h', 'Earlier inquiries of this person: /admin/conversations/' || (villa ->> 'id'), villa ->> 'id'
      from inquiries$$,
  'the second lead''s timeline says "Returning lead: 2nd inquiry in 24 h" and links the first'
);
select results_eq(
  $$select c.lead_score, c.score_reasons[array_upper(c.score_reasons, 1)], e.payload ->> 'returning'
      from inquiries join conversations c on c.id = (apt ->> 'id')::uuid
      join lead_events e on e.conversation_id = c.id and e.event_type = 'lead.created'$$,
  $$values (40, 'returning lead: 2nd inquiry in 24 h', '2nd inquiry in 24 h')$$,
  'coming back counts in the score, with its reason, and the lead.created event says so'
);
select is(
  (select count(*)::int from inquiries join lead_events e
     on e.conversation_id in ((villa ->> 'id')::uuid, (apt ->> 'id')::uuid) and e.event_type = 'lead.created'),
  2, 'each inquiry is announced'
);

-- A second chatbot session from the same email is a new lead; its exact replay is not.
create temp table chats as
select submit_lead('{"form": "chatbot", "email": "lina@example.com", "session_id": "s-1", "quality": "warm",
                     "messages": [{"role": "user", "content": "a villa?"}]}') as first,
       submit_lead('{"form": "chatbot", "email": "lina@example.com", "session_id": "s-2", "quality": "hot",
                     "messages": [{"role": "user", "content": "ready to buy"}, {"role": "assistant", "content": "great"}]}') as second,
       submit_lead('{"form": "chatbot", "email": "LINA@example.com", "session_id": "s-2", "quality": "hot",
                     "messages": [{"role": "user", "content": " ready to buy "}, {"role": "assistant", "content": "great"}]}') as replay;
select results_eq(
  $$select (second ->> 'created')::boolean, second ->> 'quality', (replay ->> 'created')::boolean, replay ->> 'id' = second ->> 'id' from chats$$,
  $$values (true, 'hot', false, true)$$,
  'a new chatbot session is a new lead; the same session sent again (case and spacing aside) is a replay'
);
select is(
  (select person_inquiry from chats join conversations c on c.id = (second ->> 'id')::uuid),
  4, 'the person''s fourth inquiry knows it is the fourth'
);
select is(
  (select count(*)::int from chats join chat_messages m on m.conversation_id = (second ->> 'id')::uuid),
  2, 'the replay saved no messages again'
);

-- Anything else that differs is another inquiry: here only the message.
select isnt(
  (select submit_lead('{"form": "contact_form", "email": "mo@example.com", "message": "Call me"}') ->> 'id'),
  (select submit_lead('{"form": "contact_form", "email": "mo@example.com", "message": "Call me today"}') ->> 'id'),
  'a different message is a different lead'
);

-- A phone links too: another email with a phone seen before is the same person.
create temp table by_phone as
select submit_lead('{"form": "contact_form", "email": "a1@example.com", "phone": "+971501234567"}') as first,
       submit_lead('{"form": "contact_form", "email": "a2@example.com", "phone": "+971 50 123 4567"}') as second;
select is(
  (select count(distinct c.person_id)::int from by_phone join conversations c on c.id in ((first ->> 'id')::uuid, (second ->> 'id')::uuid)),
  1, 'a lead whose phone was seen before joins that person'
);

-- The replay window ends after 10 minutes.
create temp table late as select submit_lead('{"form": "contact_form", "email": "late@example.com", "message": "Still there?"}') as r;
update leadrelay_private.intake_claims set expires_at = now() - interval '1 second'
 where conversation_id = (select (r ->> 'id')::uuid from late);
create temp table late_again as
select submit_lead('{"form": "contact_form", "email": "late@example.com", "message": "Still there?"}') as again;
select results_eq(
  $$select (again ->> 'created')::boolean, again ->> 'id' <> (r ->> 'id'), c.person_inquiry
      from late, late_again join conversations c on c.id = (again ->> 'id')::uuid$$,
  $$values (true, true, 2)$$,
  'the same payload after the window is a new lead, linked to the first'
);

-- Idempotency keys.
create temp table keyed as
select submit_lead('{"form": "contact_form", "email": "k1@example.com", "message": "first visitor", "idempotency_key": "shared-key"}') as first;
create temp table leads_before as select count(*) as n from conversations;
select is(
  pg_temp.lead_error('{"form": "contact_form", "email": "k2@example.com", "message": "second visitor", "idempotency_key": "shared-key"}'),
  jsonb_build_object('sqlstate', 'PT422', 'message', 'idempotency_key_reused', 'detail', jsonb_build_object('idempotency_key', 'shared-key')),
  'the same key with another payload is refused: PT422 idempotency_key_reused, naming the key'
);
select is((select count(*) from conversations), (select n from leads_before), 'the refused payload saved nothing');
select results_eq(
  $$select (again ->> 'created')::boolean, again ->> 'id' = first ->> 'id'
      from keyed, lateral (select submit_lead('{"form": "contact_form", "email": "k1@example.com", "message": "first visitor", "idempotency_key": "shared-key"}') as again) a$$,
  $$values (false, true)$$,
  'the same key with the same payload is the first answer'
);
select is(
  (submit_lead('{"form": "chatbot", "email": "k2@example.com", "message": "other form", "idempotency_key": "shared-key"}') ->> 'created')::boolean,
  true, 'a key is scoped to its form'
);
update leadrelay_private.intake_claims set expires_at = now() where claim = 'key:contact_form:shared-key';
select is(
  (submit_lead('{"form": "contact_form", "email": "k3@example.com", "message": "a day later", "idempotency_key": "shared-key"}') ->> 'created')::boolean,
  true, 'a key expires after 24 hours: then it names a new request'
);
select results_eq(
  $$select (c.expires_at - now()), c.fingerprint is not null from leadrelay_private.intake_claims c where c.claim = 'key:chatbot:shared-key'$$,
  $$values (interval '24 hours', true)$$,
  'a key is held for 24 hours with its payload''s fingerprint'
);
select is(
  pg_temp.lead_error('{"form": "contact_form", "email": "k4@example.com", "idempotency_key": "has spaces and ünïcode"}') -> 'detail',
  '{"idempotency_key": "must be letters, digits and . _ : ~ + / = - only"}',
  'a key has allowed characters'
);
select is(
  pg_temp.lead_error(jsonb_build_object('form', 'contact_form', 'email', 'k5@example.com', 'idempotency_key', repeat('k', 201))) -> 'detail',
  '{"idempotency_key": "must be at most 200 characters"}',
  'a key has a length limit'
);
-- A replay sent under a new key: the key then names the replayed lead.
create temp table rekeyed as
select submit_lead('{"form": "contact_form", "email": "rk@example.com", "idempotency_key": "rk-1"}') as first,
       submit_lead('{"form": "contact_form", "email": "rk@example.com", "idempotency_key": "rk-2"}') as replay;
select results_eq(
  $$select (replay ->> 'created')::boolean, replay ->> 'id' = first ->> 'id',
           (select c.conversation_id::text from leadrelay_private.intake_claims c where c.claim = 'key:contact_form:rk-2') = first ->> 'id'
      from rekeyed$$,
  $$values (false, true, true)$$,
  'a replay under a new key returns the first lead, and the new key names it'
);

-- The RPC's limits.
select is(
  pg_temp.lead_error(jsonb_build_object('form', 'contact_form', 'email', 'big@example.com',
    'metadata', jsonb_build_object('a', repeat('x', 8000)), 'device_info', jsonb_build_object('b', repeat('y', 8000)),
    'messages', (select jsonb_agg(jsonb_build_object('role', 'user', 'content', repeat('m', 4000))) from generate_series(1, 13)))) - 'detail',
  '{"sqlstate": "PT413", "message": "payload_too_large"}',
  'a payload over 64 KiB is refused with PT413 (PostgREST: 413)'
);
select is(public.intake_limit('payload_bytes'), 65536, 'the payload limit is 64 KiB, as the HTTP intake''s body limit');

-- The per-client rate limit for the API roles, keyed by the address PostgREST passes on.
set local request.headers = '{"x-forwarded-for": "198.51.100.7, 203.0.113.9"}';
select is(public.api_client_address(), '203.0.113.9', 'the client is the right-most X-Forwarded-For entry (the one the proxy appended)');
set local request.headers = '{"cf-connecting-ip": "192.0.2.1", "x-forwarded-for": "198.51.100.7"}';
select is(public.api_client_address(), '192.0.2.1', 'Cloudflare''s cf-connecting-ip comes first');
set local request.headers = '{}';
select is(public.api_client_address(), 'unknown', 'without the headers the client is unknown');

set local role anon;
set local request.jwt.claims = '{"role": "anon"}';
set local request.headers = '{"x-forwarded-for": "203.0.113.50"}';
select is(
  (select count(*)::int from generate_series(1, 20) i
    where (submit_lead(jsonb_build_object('form', 'contact_form', 'email', format('rate%s@example.com', i))) ->> 'created')::boolean),
  20, 'anon may send 20 leads a minute from one address'
);
select is(
  pg_temp.lead_error('{"form": "contact_form", "email": "rate21@example.com"}') ->> 'sqlstate',
  'PT429', 'the 21st in the minute is refused with PT429 (PostgREST: 429)'
);
set local request.headers = '{"x-forwarded-for": "203.0.113.51"}';
select is(
  (submit_lead('{"form": "contact_form", "email": "other-client@example.com"}') ->> 'created')::boolean,
  true, 'another address has its own allowance'
);
reset role;
select is(
  (select requests from leadrelay_private.api_rate_limits where client = '203.0.113.50'),
  20, 'the refused call did not count'
);
select lives_ok(
  $$select public.check_api_rate_limit('203.0.113.50', now() + interval '1 minute')$$,
  'the allowance comes back the next minute'
);
select is(
  (submit_lead('{"form": "contact_form", "email": "service-bulk@example.com"}') ->> 'created')::boolean,
  true, 'the service (not an API role) is not limited here: the HTTP intake has its own limiter'
);

-- Pruning drops what has expired, and only that.
update leadrelay_private.intake_claims set expires_at = now() - interval '1 minute' where claim = 'key:contact_form:rk-1';
select is(public.prune_intake(now() + interval '2 minutes', 500) >= 1, true, 'prune_intake drops expired claims and old windows');
select is(
  (select count(*)::int from leadrelay_private.intake_claims where claim = 'key:contact_form:rk-1'), 0,
  'the expired claim is gone'
);

-- The phone as typed, and E.164 only when valid for its country.
create temp table phones as
select submit_lead('{"form": "contact_form", "email": "gb@example.com", "phone": "050 123 4567", "metadata": {"country": "GB"}}') as gb,
       submit_lead('{"form": "contact_form", "email": "ae@example.com", "phone": "050 123 4567", "metadata": {"country": "AE"}}') as ae,
       submit_lead('{"form": "contact_form", "phone": "050 765 4321"}') as default_region,
       submit_lead('{"form": "contact_form", "phone": "050 123 4567", "metadata": {"country": "US"}}') as phone_only;
select results_eq(
  $$select c.phone, c.phone_raw, c.phone_valid, 'phone could not be verified' = any (c.score_reasons)
      from phones join conversations c on c.id = (gb ->> 'id')::uuid$$,
  $$values (null::text, '050 123 4567', false, true)$$,
  '"050 123 4567" with GB is kept as typed, flagged, no E.164, and the lead is saved'
);
select results_eq(
  $$select c.phone, c.phone_raw, c.phone_valid, 'phone number given' = any (c.score_reasons)
      from phones join conversations c on c.id = (ae ->> 'id')::uuid$$,
  $$values ('+971501234567', '050 123 4567', true, true)$$,
  '"050 123 4567" with AE is stored as +971501234567'
);
select is(
  (select c.phone from phones join conversations c on c.id = (default_region ->> 'id')::uuid),
  '+971507654321', 'without a country the configured default region (AE) applies'
);
select results_eq(
  $$select (phone_only ->> 'created')::boolean, c.phone, c.phone_raw from phones join conversations c on c.id = (phone_only ->> 'id')::uuid$$,
  $$values (true, null::text, '050 123 4567')$$,
  'a number that is not valid is still a way to reach the person: the lead is saved, flagged'
);

-- What the alerts say (the console's claim returns what every channel shows).
create temp table alerts as select * from claim_console_events(1000);
select is(
  (select a.phone from alerts a, phones where a.conversation_id = (gb ->> 'id')::uuid and a.event_type = 'lead.created'),
  '050 123 4567 (not verified)', 'an alert shows a number that could not be verified as typed, and says so'
);
select ok(
  (select 'returning lead: 2nd inquiry in 24 h' = any (a.score_reasons) from alerts a, inquiries
    where a.conversation_id = (apt ->> 'id')::uuid and a.event_type = 'lead.created'),
  'the alert of a returning person''s lead says so'
);

-- The admin panel lists a person's leads through PostgREST, under RLS.
set local role authenticated;
set local request.jwt.claims = '{"role": "authenticated", "app_metadata": {"role": "admin"}}';
select is(
  (select count(*)::int from conversations c where c.person_id = (select c2.person_id from conversations c2 where c2.email = 'lina@example.com' limit 1)),
  4, 'an admin lists a person''s leads by person_id'
);
reset role;

select * from finish();
rollback;

-- The intake RPC: validation that names every bad field, idempotency, the duplicate window,
-- and everything a lead brings saved in one call.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(35);

-- The error submit_lead raises for a payload, as the Go server and PostgREST see it.
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

-- A contact form, saved whole.
create temp table receipt as
select submit_lead('{
  "form": "contact_form",
  "name": "  Amira Haddad ",
  "email": "Amira.Haddad@Example.COM",
  "message": "Two-bedroom flat in Dubai Marina?",
  "metadata": {"country": "AE", "utm_source": "google"},
  "device_info": {"os": "iOS"},
  "unexpected": "ignored"
}') as r;

select is(
  (select array_agg(k order by k) from receipt, jsonb_object_keys(r) k),
  array['created', 'id', 'lead_score', 'quality', 'sla_response_deadline'],
  'submit_lead answers with id, created, quality, lead_score and sla_response_deadline'
);
select results_eq(
  $$select c.name, c.email, c.form::text, c.source, c.metadata ->> 'utm_source', c.device_info ->> 'os'
      from receipt join conversations c on c.id = (r ->> 'id')::uuid$$,
  $$values ('Amira Haddad', 'amira.haddad@example.com', 'contact_form', 'website', 'google', 'iOS')$$,
  'the lead is saved trimmed, with its email lower-cased and the default source'
);
select results_eq(
  $$select (r ->> 'created')::boolean, r ->> 'quality', (r ->> 'lead_score')::int, (r ->> 'sla_response_deadline')::timestamptz
      from receipt$$,
  $$select true, 'cold', 0, now() + interval '24 hours'$$,
  'the answer carries the quality, the score and the deadline'
);
select results_eq(
  $$select m.sender_type::text, m.content from receipt join chat_messages m on m.conversation_id = (r ->> 'id')::uuid$$,
  $$values ('customer', 'Two-bedroom flat in Dubai Marina?')$$,
  'the form''s message is saved as the customer''s first chat message'
);
select results_eq(
  $$select (select count(*)::int from lead_events e where e.conversation_id = (r ->> 'id')::uuid and e.event_type = 'lead.created'),
           (select count(*)::int from conversation_timeline t where t.conversation_id = (r ->> 'id')::uuid and t.event_type = 'created')
      from receipt$$,
  $$values (1, 1)$$,
  'the same call wrote the lead.created event and the timeline entry'
);

-- Validation: one error, SQLSTATE 22023, naming every bad field.
create temp table leads_before as select count(*) as n from conversations;
select is(
  pg_temp.lead_error('{"form": "contact_form", "email": "not-an-email", "name": 42, "metadata": [1], "messages": "hi"}'),
  jsonb_build_object(
    'sqlstate', '22023',
    'message', 'invalid lead',
    'detail', jsonb_build_object(
      'email', 'must be a valid email address',
      'contact', 'an email or a phone is required',
      'name', 'must be a string',
      'metadata', 'must be a JSON object',
      'messages', 'must be an array'
    )
  ),
  'a bad payload raises 22023 "invalid lead" with every bad field in DETAIL'
);
select is(
  pg_temp.lead_error('{"email": "a@example.com"}') -> 'detail',
  '{"form": "is required"}',
  'form is required'
);
select is(
  pg_temp.lead_error('{"form": "newsletter", "email": "a@example.com"}') -> 'detail',
  '{"form": "must be one of contact_form, property_inquiry, chatbot"}',
  'form must be a known form'
);
select is(
  pg_temp.lead_error('{"form": "property_inquiry", "phone": "+971501234567"}') -> 'detail',
  '{"property_id": "is required for a property inquiry"}',
  'a property inquiry needs its property'
);
select is(
  pg_temp.lead_error('{"form": "contact_form", "phone": "call me maybe"}') -> 'detail',
  '{"phone": "must be a phone number", "contact": "an email or a phone is required"}',
  'a phone that is not a number is refused, and leaves no contact'
);
select is(
  pg_temp.lead_error('{"form": "contact_form", "email": "   "}') -> 'detail',
  '{"contact": "an email or a phone is required"}',
  'a blank email is no email'
);
select is(
  pg_temp.lead_error(jsonb_build_object('form', 'contact_form', 'email', 'a@example.com',
    'name', repeat('n', 201), 'message', repeat('m', 5001), 'idempotency_key', repeat('k', 201),
    'device_info', jsonb_build_object('x', repeat('d', 8200)))) -> 'detail',
  '{"name": "must be at most 200 characters", "message": "must be at most 5000 characters",
    "idempotency_key": "must be at most 200 characters", "device_info": "must be at most 8 KiB"}',
  'length limits name each field over its limit'
);
select is(
  pg_temp.lead_error('{"form": "contact_form", "email": "a@example.com", "quality": "hot"}') -> 'detail',
  '{"quality": "only a chatbot lead may state its quality"}',
  'only the chatbot states a quality'
);
select is(
  pg_temp.lead_error('{"form": "chatbot", "email": "a@example.com", "quality": "scorching"}') -> 'detail',
  '{"quality": "must be one of hot, warm, cold"}',
  'a stated quality must be a known quality'
);
select is(
  pg_temp.lead_error('{"form": "chatbot", "email": "a@example.com", "messages": [
    {"role": "user", "content": "hello"},
    {"role": "admin", "content": ""},
    "hi",
    {"role": "assistant", "content": "ok", "at": "yesterday-ish"}
  ]}') -> 'detail',
  '{"messages[1].role": "must be user or assistant", "messages[1].content": "must be a non-empty string",
    "messages[2]": "must be an object", "messages[3].at": "must be a timestamp with a time zone"}',
  'each bad message is named by its position'
);
select is(
  pg_temp.lead_error(jsonb_build_object('form', 'chatbot', 'email', 'a@example.com',
    'messages', (select jsonb_agg(jsonb_build_object('role', 'user', 'content', 'm' || i)) from generate_series(1, 201) i))) -> 'detail',
  '{"messages": "must hold at most 200 messages"}',
  'a transcript holds at most 200 messages'
);
select is(
  pg_temp.lead_error('["form", "contact_form"]') -> 'detail',
  '{"payload": "must be a JSON object"}',
  'a payload that is not an object is refused'
);
select is(
  (select count(*) from conversations), (select n from leads_before),
  'no refused payload saved anything'
);

-- Idempotency: the same key with the same payload is the same lead (another payload: 22_).
create temp table keyed as
select submit_lead('{"form": "contact_form", "email": "k@example.com", "idempotency_key": "form-123"}') as first,
       submit_lead('{"form": "contact_form", "email": "K@example.com ", "idempotency_key": "form-123"}') as retry;
select results_eq(
  $$select (first ->> 'created')::boolean, (retry ->> 'created')::boolean, first ->> 'id' = retry ->> 'id' from keyed$$,
  $$values (true, false, true)$$,
  'a retry with the same idempotency key returns the same lead, created = false'
);
select is(
  (select count(*)::int from conversations where idempotency_key = 'form-123'), 1,
  'a retry with the same key saves no second lead'
);
select is(
  (select count(*)::int from keyed, lead_events e where e.conversation_id = (first ->> 'id')::uuid), 1,
  'a retry with the same key announces nothing again'
);

-- Without a key: the same payload within 10 minutes is the same lead.
create temp table repeated as
select submit_lead('{"form": "contact_form", "email": "r@example.com", "message": "Call me"}') as first,
       submit_lead('{"form": "contact_form", "email": "R@Example.com ", "message": " Call me"}') as again,
       submit_lead('{"form": "contact_form", "email": "r@example.com", "message": "Call me tomorrow"}') as other_message,
       submit_lead('{"form": "chatbot", "email": "r@example.com", "message": "Call me"}') as other_form;
select results_eq(
  $$select (again ->> 'created')::boolean, again ->> 'id' = first ->> 'id' from repeated$$,
  $$values (false, true)$$,
  'the same submission again (different case and spacing) returns the first lead'
);
select results_eq(
  $$select (other_message ->> 'created')::boolean, (other_form ->> 'created')::boolean from repeated$$,
  $$values (true, true)$$,
  'another message or another form is another lead'
);
insert into conversations (id, form, email, message, created_at)
values ('40000000-0000-0000-0000-000000000001', 'contact_form', 'late@example.com', 'Still interested', now() - interval '11 minutes');
select results_eq(
  $$select (r ->> 'created')::boolean, r ->> 'id' <> '40000000-0000-0000-0000-000000000001'
      from (select submit_lead('{"form": "contact_form", "email": "late@example.com", "message": "Still interested"}') as r) s$$,
  $$values (true, true)$$,
  'the same submission after 10 minutes is a new lead'
);

-- Phones are normalised with the country in metadata.
create temp table phoned as
select submit_lead('{"form": "contact_form", "phone": "050 123 4567", "metadata": {"country": "AE"}}') as national,
       submit_lead('{"form": "contact_form", "phone": "0044 (7400) 123-456"}') as international;
select is(
  (select c.phone from phoned join conversations c on c.id = (national ->> 'id')::uuid),
  '+971501234567',
  'a national phone number gets the calling code of metadata.country'
);
select is(
  (select c.phone from phoned join conversations c on c.id = (international ->> 'id')::uuid),
  '+447400123456',
  'a 00-prefixed phone number becomes +'
);

-- A chatbot lead with its transcript and its own judgement.
create temp table chat as
select submit_lead('{
  "form": "chatbot",
  "source": "chatbot",
  "name": "Priya",
  "phone": "+971 50 765 4321",
  "session_id": "sess-42",
  "quality": "hot",
  "message": "Summary: wants a villa",
  "messages": [
    {"role": "user", "content": "I want a villa", "at": "2026-01-01T10:00:00Z"},
    {"role": "assistant", "content": "What is your budget?", "at": "2026-01-01T10:00:05Z"},
    {"role": "user", "content": "4 million"}
  ]
}') as r;
select results_eq(
  $$select r ->> 'quality', c.score_reasons[1], c.session_id, c.source, c.first_response_at
      from chat join conversations c on c.id = (r ->> 'id')::uuid$$,
  $$values ('hot', 'quality stated at intake: hot', 'sess-42', 'chatbot', null::timestamptz)$$,
  'a chatbot lead keeps its stated quality; the bot''s reply does not answer it'
);
select results_eq(
  $$select m.sender_type::text, m.content, m.sent_at
      from chat join chat_messages m on m.conversation_id = (r ->> 'id')::uuid order by m.seq$$,
  $$values ('customer', 'I want a villa', '2026-01-01 10:00:00+00'::timestamptz),
           ('bot', 'What is your budget?', '2026-01-01 10:00:05+00'::timestamptz),
           ('customer', '4 million', now())$$,
  'the transcript is saved in order, user as customer and assistant as bot, at its times'
);
select results_eq(
  $$select (r ->> 'sla_response_deadline')::timestamptz from chat$$,
  $$values (now() + interval '15 minutes')$$,
  'a HOT chatbot lead is due in 15 minutes'
);

-- The API roles call it the PostgREST way.
set local role anon;
set local request.jwt.claims = '{"role": "anon"}';
select is(
  (submit_lead('{"form": "contact_form", "email": "anon@example.com"}') ->> 'created')::boolean,
  true, 'anon can submit a lead'
);
select throws_ok(
  $$select submit_lead('{"form": "contact_form"}')$$,
  '22023', 'invalid lead', 'anon gets the same validation error'
);
reset role;
select is(
  (select count(*)::int from conversations where email = 'anon@example.com'), 1,
  'the lead anon submitted is saved'
);

set local role authenticated;
set local request.jwt.claims = '{"role": "authenticated", "sub": "aaaaaaaa-0000-0000-0000-000000000001"}';
select is(
  (submit_lead('{"form": "contact_form", "email": "user@example.com"}') ->> 'created')::boolean,
  true, 'a signed-in user can submit a lead'
);
reset role;

set local role service_role;
select is(
  (submit_lead('{"form": "contact_form", "email": "service@example.com"}') ->> 'created')::boolean,
  true, 'the service role can submit a lead'
);
reset role;

-- The replay window is a claim on the payload's fingerprint, held for 10 minutes: concurrent
-- identical calls meet at its primary key (the Go tests run them at once).
create temp table claimed as
select submit_lead('{"form": "contact_form", "email": "lock@example.com", "message": "hi"}') as r;
select results_eq(
  $$select c.conversation_id::text, c.expires_at from leadrelay_private.intake_claims c, claimed
     where c.claim like 'fingerprint:%' and c.conversation_id = (r ->> 'id')::uuid$$,
  $$select r ->> 'id', now() + interval '10 minutes' from claimed$$,
  'a submission claims its fingerprint for 10 minutes'
);

select * from finish();
rollback;

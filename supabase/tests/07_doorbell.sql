-- The doorbell's webhook: with pg_net present and a receiver configured, every new event is
-- POSTed as a Supabase database webhook signed the Standard Webhooks way; without them, or
-- when sending fails, the event is saved all the same. A stand-in net.http_post records its
-- calls. (pg_notify is delivered only on commit, so the Go tests cover it.)
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(20);

create temp table http_calls (
  n serial,
  url text,
  body jsonb,
  params jsonb,
  headers jsonb,
  timeout_milliseconds integer
);

-- Standard Webhooks: v1, base64 HMAC-SHA256 of "id.timestamp.body".
create function pg_temp.expected_signature(call pg_temp.http_calls, signing_key bytea) returns text
language sql as $$
  select 'v1,' || encode(
    extensions.hmac(
      convert_to(concat_ws('.', (call).headers ->> 'webhook-id', (call).headers ->> 'webhook-timestamp', (call).body::text), 'UTF8'),
      signing_key,
      'sha256'),
    'base64')
$$;

-- Plain Postgres: no pg_net. The lead is saved and nothing is sent.
insert into leadrelay_private.settings (key, value) values
  ('webhook_url', 'https://leadrelay.example.com/webhooks/lead-events'),
  ('webhook_secret', 'whsec_' || encode(convert_to('a-32-byte-secret-for-the-tests!!', 'UTF8'), 'base64'));
select lives_ok(
  $$insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000001', 'contact_form', 'nopgnet@example.com')$$,
  'without pg_net a lead is saved'
);

-- pg_net's signature, recording instead of sending.
create schema net;
create function net.http_post(
  url text,
  body jsonb default '{}',
  params jsonb default '{}',
  headers jsonb default '{"Content-Type": "application/json"}',
  timeout_milliseconds integer default 5000
) returns bigint
language sql as $$
  insert into pg_temp.http_calls (url, body, params, headers, timeout_milliseconds)
  values (url, body, params, headers, timeout_milliseconds)
  returning n::bigint
$$;

insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000002', 'contact_form', 'hooked@example.com');

select is((select count(*)::int from http_calls), 1, 'a new event is POSTed once');
select is((select url from http_calls where n = 1), 'https://leadrelay.example.com/webhooks/lead-events',
  'to the webhook_url of the settings');
select results_eq(
  $$select body ->> 'type', body ->> 'table', body ->> 'schema', body -> 'old_record' from http_calls where n = 1$$,
  $$values ('INSERT', 'lead_events', 'public', 'null'::jsonb)$$,
  'the body is a Supabase database webhook for an insert into public.lead_events'
);
select results_eq(
  $$select c.body -> 'record' ->> 'id', c.body -> 'record' ->> 'event_type', c.body -> 'record' ->> 'idempotency_key'
      from http_calls c where n = 1$$,
  $$select e.id::text, e.event_type::text, e.idempotency_key from lead_events e
     where e.conversation_id = '70000000-0000-0000-0000-000000000002'$$,
  'the record is the new lead_events row'
);
select results_eq(
  $$select headers ->> 'Content-Type', headers ->> 'webhook-id' from http_calls where n = 1$$,
  $$select 'application/json', e.id::text from lead_events e where e.conversation_id = '70000000-0000-0000-0000-000000000002'$$,
  'the headers carry the content type and the event id as webhook-id'
);
select ok(
  (select abs((headers ->> 'webhook-timestamp')::bigint - extract(epoch from clock_timestamp())::bigint) < 60 from http_calls where n = 1),
  'webhook-timestamp is the current unix time in seconds'
);
select is(
  (select headers ->> 'webhook-signature' from http_calls where n = 1),
  (select pg_temp.expected_signature(c, convert_to('a-32-byte-secret-for-the-tests!!', 'UTF8')) from http_calls c where n = 1),
  'a whsec_ secret signs with its base64-decoded key'
);
select isnt(
  (select headers ->> 'webhook-signature' from http_calls where n = 1),
  (select pg_temp.expected_signature(c, convert_to((select value from leadrelay_private.settings where key = 'webhook_secret'), 'UTF8'))
     from http_calls c where n = 1),
  'a whsec_ secret is not used as its own text'
);
select is((select timeout_milliseconds from http_calls where n = 1), 5000, 'the request times out after 5 seconds');

-- Every event rings, not only lead.created.
update conversations set status = 'contacted' where id = '70000000-0000-0000-0000-000000000002';
select set_eq(
  $$select body -> 'record' ->> 'event_type' from http_calls$$,
  $$values ('lead.created'), ('lead.status_changed'), ('lead.responded')$$,
  'each new event is POSTed: created, status changed, responded'
);

-- A secret without the whsec_ prefix is base64 all the same, as the reference libraries read it.
update leadrelay_private.settings set value = encode(convert_to('a key without the prefix', 'UTF8'), 'base64') where key = 'webhook_secret';
delete from http_calls;
insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000003', 'contact_form', 'plain@example.com');
select is(
  (select headers ->> 'webhook-signature' from http_calls),
  (select pg_temp.expected_signature(c, convert_to('a key without the prefix', 'UTF8')) from http_calls c),
  'a secret without whsec_ signs with its base64-decoded key'
);

-- Where Vault exists, the secret comes from Vault, not the settings table.
create schema vault;
create table vault.decrypted_secrets (name text, decrypted_secret text);
insert into vault.decrypted_secrets values ('leadrelay_webhook_secret', 'whsec_' || encode(convert_to('secret from vault', 'UTF8'), 'base64'));
delete from http_calls;
insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000004', 'contact_form', 'vault@example.com');
select is(
  (select headers ->> 'webhook-signature' from http_calls),
  (select pg_temp.expected_signature(c, convert_to('secret from vault', 'UTF8')) from http_calls c),
  'on Supabase the secret is read from Vault'
);

-- No secret: nothing is sent unsigned, and the lead is saved.
delete from vault.decrypted_secrets;
delete from http_calls;
select lives_ok(
  $$insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000005', 'contact_form', 'nosecret@example.com')$$,
  'without a secret the lead is saved'
);
select is((select count(*)::int from http_calls), 0, 'without a secret nothing is sent');
drop schema vault cascade;

-- No receiver configured: nothing is sent.
delete from leadrelay_private.settings where key = 'webhook_url';
select lives_ok(
  $$insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000006', 'contact_form', 'nourl@example.com')$$,
  'without a webhook_url the lead is saved'
);
select is((select count(*)::int from http_calls), 0, 'without a webhook_url nothing is sent');

-- pg_net failing does not lose the lead: the outbox row is the truth.
insert into leadrelay_private.settings (key, value) values ('webhook_url', 'https://leadrelay.example.com/webhooks/lead-events');
create or replace function net.http_post(
  url text,
  body jsonb default '{}',
  params jsonb default '{}',
  headers jsonb default '{}',
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql as $$
begin
  raise exception 'pg_net is broken';
end
$$;
select lives_ok(
  $$insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000007', 'contact_form', 'broken@example.com')$$,
  'when the webhook cannot be sent the lead is still saved'
);
select is(
  (select count(*)::int from lead_events where conversation_id = '70000000-0000-0000-0000-000000000007' and event_type = 'lead.created'),
  1, 'and its event waits in the outbox'
);

-- A malformed whsec_ secret is a failed doorbell too, not a failed lead.
update leadrelay_private.settings set value = 'whsec_not base64!' where key = 'webhook_secret';
select lives_ok(
  $$insert into conversations (id, form, email) values ('70000000-0000-0000-0000-000000000008', 'contact_form', 'badsecret@example.com')$$,
  'a malformed secret does not fail the lead'
);

select * from finish();
rollback;

-- The schema's contract: the SLA defaults, the constraints that keep bad rows out, indexed
-- foreign keys, and the private settings no API role can reach.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(22);

select results_eq(
  $$select quality::text, response_window, warn_before from sla_policies order by response_window$$,
  $$values ('hot', interval '15 minutes', interval '30 minutes'),
           ('warm', interval '1 hour', interval '30 minutes'),
           ('cold', interval '24 hours', interval '30 minutes')$$,
  'sla_policies holds HOT 15 min, WARM 1 h, COLD 24 h, each warned 30 min before'
);

select enum_has_labels('public', 'lead_quality', array['hot', 'warm', 'cold'], 'lead_quality is hot, warm, cold');
select enum_has_labels('public', 'lead_event_type', array[
  'lead.created', 'lead.updated', 'lead.status_changed', 'lead.responded', 'sla.warning',
  'sla.breached', 'followup.due', 'followup.overdue', 'notification.sent', 'notification.failed'
], 'lead_event_type names every event of the outbox');
select enum_has_labels('public', 'notification_channel', array['slack', 'email', 'telegram', 'whatsapp', 'sms', 'crm'],
  'notification_channel names every channel');

-- Bad rows are refused by the table, whoever writes them.
select throws_ok(
  $$insert into conversations (form, name) values ('contact_form', 'No Contact')$$,
  '23514', null, 'a lead without an email or a phone is refused'
);
select throws_ok(
  $$insert into conversations (form, email) values ('property_inquiry', 'a@example.com')$$,
  '23514', null, 'a property inquiry without a property is refused'
);
select throws_ok(
  $$insert into conversations (form, email, metadata) values ('contact_form', 'a@example.com', '[]')$$,
  '23514', null, 'metadata that is not a JSON object is refused'
);
select throws_ok(
  $$insert into conversations (form, email, device_info) values ('contact_form', 'a@example.com', '"phone"')$$,
  '23514', null, 'device_info that is not a JSON object is refused'
);
select throws_ok(
  $$insert into conversations (form, email, name) values ('contact_form', 'a@example.com', repeat('x', 201))$$,
  '23514', null, 'a name over 200 characters is refused'
);
select throws_ok(
  $$insert into conversations (form, email, message) values ('contact_form', 'a@example.com', repeat('x', 5001))$$,
  '23514', null, 'a message over 5000 characters is refused'
);
select throws_ok(
  $$insert into conversations (form, email) values ('contact_form', 'not-an-email')$$,
  '23514', null, 'an email without an @ is refused'
);
select throws_ok(
  $$insert into conversations (form, email, metadata) values ('contact_form', 'a@example.com',
      jsonb_build_object('padding', repeat('x', 9000)))$$,
  '23514', null, 'metadata over 8 KiB is refused'
);

insert into conversations (id, form, email) values ('10000000-0000-0000-0000-000000000001', 'contact_form', 'a@example.com');

select lives_ok(
  $$insert into conversations (form, email, idempotency_key) values ('contact_form', 'a@example.com', 'k'),
                                                                    ('chatbot', 'b@example.com', 'k')$$,
  'an idempotency key is scoped to its form and expires (submit_lead''s claims), so the column is not unique'
);
select throws_ok(
  $$insert into chat_messages (conversation_id, sender_type, content) values ('10000000-0000-0000-0000-000000000001', 'customer', '')$$,
  '23514', null, 'an empty chat message is refused'
);
select throws_ok(
  $$update conversations set sla_breached = true where id = '10000000-0000-0000-0000-000000000001'$$,
  '23514', null, 'a breach without its time is refused'
);
select throws_ok(
  $$update lead_events set lease_owner = 'worker-1' where conversation_id = '10000000-0000-0000-0000-000000000001'$$,
  '23514', null, 'a lease without an expiry is refused'
);
select throws_ok(
  $$update lead_events set processed = true where conversation_id = '10000000-0000-0000-0000-000000000001'$$,
  '23514', null, 'a processed event without processed_at is refused'
);
select throws_ok(
  $$insert into lead_events (event_type, conversation_id, idempotency_key)
    values ('lead.updated', '10000000-0000-0000-0000-000000000001', 'lead.created:10000000-0000-0000-0000-000000000001')$$,
  '23505', null, 'an event idempotency key is used once'
);
select throws_ok(
  $$insert into leadrelay_private.settings (key, value) values ('webhook-url', 'https://example.com')$$,
  '23514', null, 'a misspelt setting is refused rather than silently ignored'
);

-- Every foreign key has an index that starts with its columns (the cascade and the joins use it).
select is_empty(
  $$select c.conrelid::regclass::text || ' ' || c.conname
      from pg_constraint c
     where c.contype = 'f'
       and c.connamespace = 'public'::regnamespace
       and not exists (
         select from pg_index i
          where i.indrelid = c.conrelid
            and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(c.conkey)] = c.conkey
       )$$,
  'every foreign key in public is indexed'
);

select ok(
  not has_schema_privilege('anon', 'leadrelay_private', 'usage')
  and not has_schema_privilege('authenticated', 'leadrelay_private', 'usage')
  and not has_schema_privilege('service_role', 'leadrelay_private', 'usage'),
  'no API role may use the private schema that holds the webhook settings'
);

select ok(
  not has_table_privilege('anon', 'leadrelay_private.settings', 'select')
  and not has_table_privilege('authenticated', 'leadrelay_private.settings', 'select'),
  'no API role may read the webhook settings'
);

select * from finish();
rollback;

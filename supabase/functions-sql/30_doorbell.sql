-- The doorbell: every new lead_events row tells the dispatcher there is work. It is a hint,
-- not the delivery guarantee (the row is; a sweep finds what no doorbell announced), so a
-- doorbell never fails the insert that saved the lead: the NOTIFY cannot fail when called,
-- and a webhook that cannot be queued only warns.
--
-- Two bells:
--   pg_notify('lead_events', {"id", "event_type", "conversation_id"}), for a listening service;
--   where pg_net is installed and leadrelay_private.settings has a webhook_url, a Supabase
--   database-webhook POST ({type, table, schema, record, old_record}) signed the Standard
--   Webhooks way: webhook-id (the event id), webhook-timestamp (unix seconds) and
--   webhook-signature ('v1,' || base64 of HMAC-SHA256 over id.timestamp.body). pg_net sends
--   the jsonb body as body::text, so that exact text is what is signed.
-- The secret lives in Vault (secret 'leadrelay_webhook_secret') where Vault exists, else in
-- leadrelay_private.settings (key 'webhook_secret'). The secret is base64, optionally after a
-- whsec_ prefix, and the key is its decoding, as the Standard Webhooks libraries (and the
-- service's WEBHOOK_SECRET) read it.
-- pg_net queues the request in the inserting transaction and sends it after commit.
-- Where the webhook's secret is kept: Vault where Vault exists, else leadrelay_private.settings.
-- secret is null when none is stored.
create or replace function leadrelay_private.webhook_secret(out secret text, out source text)
language plpgsql
stable
security definer
set search_path = ''
as $$
begin
  if to_regclass('vault.decrypted_secrets') is not null then
    -- Dynamic, so this file compiles where Vault is not installed.
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1'
      into secret
      using 'leadrelay_webhook_secret';
    source := 'vault';
  else
    select s.value into secret from leadrelay_private.settings s where s.key = 'webhook_secret';
    source := 'settings';
  end if;
end
$$;

-- The Standard Webhooks signature of a message, as the doorbell sends it and `leadrelay
-- doctor` checks it: 'v1,' || base64 of HMAC-SHA256 over id.timestamp.body, keyed by the
-- secret's base64 decoding (after an optional whsec_ prefix). Raises when the secret is
-- missing, not base64 or empty: nothing can be signed with it.
create or replace function leadrelay_private.webhook_signature(secret text, id text, sent_at text, body text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  signing_key bytea;
begin
  if secret is null then
    raise exception 'webhook_url is set but there is no webhook secret';
  end if;
  signing_key := decode(case when secret like 'whsec\_%' then substr(secret, 7) else secret end, 'base64');
  if octet_length(signing_key) = 0 then
    raise exception 'the webhook secret is empty';
  end if;
  return 'v1,' || encode(extensions.hmac(convert_to(id || '.' || sent_at || '.' || body, 'UTF8'), signing_key, 'sha256'), 'base64');
end
$$;

revoke all on function
  leadrelay_private.webhook_secret(),
  leadrelay_private.webhook_signature(text, text, text, text)
from public, anon, authenticated, service_role;

create or replace function public.lead_events_doorbell()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  webhook_url text;
  body jsonb;
  sent_at text;
  signature text;
  notified text;
begin
  -- No exception block: with this channel and a payload this size pg_notify cannot fail when
  -- called (a full queue fails the commit, where no block would catch it), and the block
  -- started a subtransaction for every event. Assigned, not PERFORMed: an assignment is
  -- evaluated as an expression, where PERFORM would start an executor (pg_notify returns
  -- void, read as '').
  notified := pg_notify(
    'lead_events',
    json_build_object('id', new.id, 'event_type', new.event_type, 'conversation_id', new.conversation_id)::text
  )::text;

  -- Without pg_net's schema there is no webhook to send (a catalog cache lookup); then the
  -- setting (one index lookup), then the function (to_regprocedure parses a signature).
  if to_regnamespace('net') is null then
    return null;
  end if;
  select s.value into webhook_url from leadrelay_private.settings s where s.key = 'webhook_url';
  if webhook_url is null or to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null then
    return null;
  end if;

  begin
    body := jsonb_build_object(
      'type', 'INSERT',
      'table', tg_table_name,
      'schema', tg_table_schema,
      'record', to_jsonb(new),
      'old_record', null
    );
    sent_at := extract(epoch from clock_timestamp())::bigint::text;
    signature := leadrelay_private.webhook_signature(
      (leadrelay_private.webhook_secret()).secret, new.id::text, sent_at, body::text);

    -- Dynamic, so this file compiles where pg_net is not installed.
    execute 'select net.http_post(url => $1, body => $2, params => $3, headers => $4, timeout_milliseconds => $5)'
      using
        webhook_url,
        body,
        '{}'::jsonb,
        jsonb_build_object(
          'Content-Type', 'application/json',
          'webhook-id', new.id,
          'webhook-timestamp', sent_at,
          'webhook-signature', signature
        ),
        5000;
  exception when others then
    raise warning 'lead event % doorbell: webhook not sent: %', new.id, sqlerrm;
  end;
  return null;
end
$$;

create or replace trigger lead_events_doorbell
  after insert on public.lead_events
  for each row execute function public.lead_events_doorbell();

revoke execute on function public.lead_events_doorbell()
from public, anon, authenticated, service_role;

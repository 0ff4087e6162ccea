-- What `leadrelay doctor` asks of the webhook settings: the receiver's URL, where its secret
-- is kept, and a probe signed with that secret exactly as public.lead_events_doorbell signs
-- (Standard Webhooks: v1, base64 HMAC-SHA256 of id.timestamp.body, the secret base64 after an
-- optional whsec_), so the doctor can compare WEBHOOK_SECRET with it without reading it.
create or replace function leadrelay_private.webhook_probe(p_id text, p_timestamp text, p_body text)
returns table (webhook_url text, secret_source text, signature text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  secret text;
begin
  select s.value into webhook_url from leadrelay_private.settings s where s.key = 'webhook_url';
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1'
      into secret
      using 'leadrelay_webhook_secret';
    secret_source := 'vault';
  else
    select s.value into secret from leadrelay_private.settings s where s.key = 'webhook_secret';
    secret_source := 'settings';
  end if;
  if secret is null then
    secret_source := null;
    return next;
    return;
  end if;
  begin
    signature := 'v1,' || encode(
      extensions.hmac(convert_to(p_id || '.' || p_timestamp || '.' || p_body, 'UTF8'),
        decode(case when secret like 'whsec\_%' then substr(secret, 7) else secret end, 'base64'), 'sha256'),
      'base64');
  exception when others then
    signature := null; -- not base64: the doorbell cannot sign with it either
  end;
  return next;
end
$$;

revoke all on function leadrelay_private.webhook_probe(text, text, text) from public, anon, authenticated, service_role;

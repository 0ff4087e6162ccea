-- What `leadrelay doctor` asks of the webhook settings: the receiver's URL, where its secret
-- is kept, and a probe signed with that secret by the doorbell's own signing function
-- (leadrelay_private.webhook_signature), so the doctor can compare WEBHOOK_SECRET with it
-- without reading it. signature is null when the doorbell could not sign with the secret.
create or replace function leadrelay_private.webhook_probe(p_id text, p_timestamp text, p_body text)
returns table (webhook_url text, secret_source text, signature text)
language plpgsql
security definer
set search_path = ''
as $$
declare
  stored record;
begin
  select s.value into webhook_url from leadrelay_private.settings s where s.key = 'webhook_url';
  stored := leadrelay_private.webhook_secret();
  if stored.secret is null then
    return next;
    return;
  end if;
  secret_source := stored.source;
  begin
    signature := leadrelay_private.webhook_signature(stored.secret, p_id, p_timestamp, p_body);
  exception when others then
    signature := null; -- not base64, or empty: the doorbell cannot sign with it either
  end;
  return next;
end
$$;

revoke all on function leadrelay_private.webhook_probe(text, text, text) from public, anon, authenticated, service_role;

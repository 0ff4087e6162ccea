-- A stand-in for pg_net where the extension is not installed: net.http_post with pg_net's
-- signature queues the request exactly as pg_net does (method, url, headers, the jsonb body
-- as UTF-8 text, timeout) in net.http_request_queue, and sends nothing. A test reads the
-- queue after commit and sends each request itself, as pg_net's worker would.
create schema if not exists net;

create table if not exists net.http_request_queue (
  id bigserial primary key,
  method text not null,
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 1000
)
returns bigint
language plpgsql
as $$
declare
  request_id bigint;
  content_type text;
begin
  select h.value into content_type
    from jsonb_each_text(coalesce(headers, '{}'::jsonb)) h
   where lower(h.key) = 'content-type'
   limit 1;
  if content_type is null then
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  if body is null then
    raise exception 'body must not be null';
  end if;
  if params <> '{}'::jsonb then
    raise exception 'the stand-in does not encode params';
  end if;
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', url, headers, convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  return request_id;
end
$$;

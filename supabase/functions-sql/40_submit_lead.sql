-- The intake: one call saves a lead (the conversation, its first messages and, through the
-- triggers, its person, its event, its timeline entries and its SLA deadline) in one
-- transaction. Callable by anon through PostgREST (POST /rest/v1/rpc/submit_lead
-- {"payload": {...}}) and by the Go service, with the same checks and limits.
--
-- payload: form ('contact_form' | 'property_inquiry' | 'chatbot', required), name, email,
-- phone, message, source, metadata (object; metadata.country is the phone's country when the
-- number has no +/00), device_info (object), property_id (required for a property inquiry),
-- property_title, budget, timeline, financing, session_id, quality ('hot' | 'warm' | 'cold',
-- a chatbot's own judgement), messages ([{role: 'user' | 'assistant', content, at}], saved
-- in order; user is the customer, assistant the bot) and idempotency_key. Other keys are
-- ignored. Blank strings count as absent. The limits are public.intake_limit and the text
-- fields' lengths below.
--
-- Errors (PostgREST answers each with the HTTP status in brackets; so does the Go intake):
--   22023 'invalid lead' [400], DETAIL a JSON object naming every bad field: {"email": "must
--     be a valid email address", "contact": "an email or a phone is required",
--     "messages[2].role": "must be user or assistant"};
--   PT413 'payload_too_large' [413]: the payload is over intake_limit('payload_bytes');
--   PT422 'idempotency_key_reused' [422]: the key was used in the last 24 hours, on this form,
--     with another payload; DETAIL {"idempotency_key": "<the key>"}. Nothing is saved, and
--     nothing of the other lead is returned;
--   PT429 'rate_limited' [429]: anon or authenticated sent more than
--     intake_limit('api_leads_per_minute') leads this minute from one client address.
--
-- Returns {"id", "created", "quality", "lead_score", "sla_response_deadline"}; created is
-- false when the lead already existed: a true replay (the same normalised payload, all of
-- it, within 10 minutes), or the same idempotency key with the same payload within 24 hours.
-- Any other submission is a new lead, linked to the person's earlier leads by person_id.

-- The intake's limits, one definition for both paths (the Go intake calls submit_lead too;
-- its body limit mirrors payload_bytes, checked by a test).
create or replace function public.intake_limit(what text)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return case what
  when 'payload_bytes' then 65536          -- the whole payload, as JSON text
  when 'messages' then 200                 -- chat messages in a transcript
  when 'message_chars' then 5000           -- characters in one chat message
  when 'object_bytes' then 8192            -- metadata, device_info
  when 'api_leads_per_minute' then 20      -- per client address, through PostgREST
  when 'replay_window_seconds' then 600    -- a true replay is the same lead for 10 minutes
  when 'idempotency_key_seconds' then 86400 -- a key names one request for 24 hours
  end;
end
$$;

-- The client a PostgREST request came from: Cloudflare's cf-connecting-ip (Supabase's edge
-- sets it and overwrites any the client sent), else the right-most X-Forwarded-For entry
-- (the one the last proxy appended; the client chooses the ones to its left), else
-- x-real-ip. 'unknown' when PostgREST passed none of them.
create or replace function public.api_client_address()
returns text
language sql
stable
set search_path = ''
as $$
  select coalesce(
    nullif(btrim(h ->> 'cf-connecting-ip'), ''),
    nullif(btrim((regexp_match(h ->> 'x-forwarded-for', '([^,]*)$'))[1]), ''),
    nullif(btrim(h ->> 'x-real-ip'), ''),
    'unknown'
  )
  from (select coalesce(nullif(current_setting('request.headers', true), ''), '{}')::jsonb as h) headers
$$;

-- Counts a lead against its client's allowance for this minute; raises PT429 over it. The
-- refused call's count rolls back with it, so the row holds the allowance until the minute
-- is over.
create or replace function public.check_api_rate_limit(client text, now timestamptz)
returns void
language plpgsql
set search_path = ''
as $$
declare
  this_minute timestamptz := date_trunc('minute', now);
  used integer;
begin
  insert into leadrelay_private.api_rate_limits as r (client, window_start, requests)
  values (left(client, 100), this_minute, 1)
  on conflict on constraint api_rate_limits_pkey do update
    set window_start = excluded.window_start,
        requests = case when r.window_start = excluded.window_start then r.requests + 1 else 1 end
  returning r.requests into used;
  if used > public.intake_limit('api_leads_per_minute') then
    raise exception using
      errcode = 'PT429',
      message = 'rate_limited',
      detail = jsonb_build_object('retry_after_seconds', ceil(extract(epoch from this_minute + interval '1 minute' - now)))::text,
      hint = 'Too many leads from one address; try again in a minute.';
  end if;
end
$$;

-- Drops expired intake claims and past rate-limit windows, at most max_rows of each. The
-- intake calls it now and then; a test or an operator may call it any time.
create or replace function public.prune_intake(now timestamptz, max_rows integer default 500)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  claims integer;
  windows integer;
begin
  delete from leadrelay_private.intake_claims c
   where c.claim = any (array(
     select x.claim from leadrelay_private.intake_claims x
      where x.expires_at <= now
      order by x.expires_at
      limit max_rows
      for update skip locked));
  get diagnostics claims = row_count;
  delete from leadrelay_private.api_rate_limits r
   where r.client = any (array(
     select x.client from leadrelay_private.api_rate_limits x
      where x.window_start < date_trunc('minute', now)
      limit max_rows
      for update skip locked));
  get diagnostics windows = row_count;
  return claims + windows;
end
$$;

-- Who holds a claim that submit_lead could not take: the holder's fingerprint and lead, read
-- in a statement of its own, after the insert that met the claim waited for its holder to
-- commit (a subquery of that insert would read the snapshot from before the wait). A claim
-- whose lead was deleted names nothing any more: it is taken for lead_id until expires_at,
-- and the answer is nulls.
create or replace function public.intake_claim_holder(
  claim text,
  fingerprint text,
  lead_id uuid,
  expires_at timestamptz,
  out held_fingerprint text,
  out held_lead uuid
)
language plpgsql
set search_path = ''
as $$
begin
  select c.fingerprint, c.conversation_id into held_fingerprint, held_lead
    from leadrelay_private.intake_claims c
   where c.claim = intake_claim_holder.claim;
  if not exists (select from public.conversations l where l.id = held_lead) then
    update leadrelay_private.intake_claims c
       set fingerprint = intake_claim_holder.fingerprint,
           conversation_id = lead_id,
           expires_at = intake_claim_holder.expires_at
     where c.claim = intake_claim_holder.claim;
    held_fingerprint := null;
    held_lead := null;
  end if;
end
$$;

create or replace function public.submit_lead(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  whitespace constant text := E' \t\r\n';
  -- The text fields and their lengths in characters: a column's (the phone as typed is
  -- phone_raw), and 100 for the enums' names.
  text_fields constant text[] := array['form', 'name', 'email', 'phone', 'message', 'source', 'session_id',
    'property_id', 'property_title', 'budget', 'timeline', 'financing', 'quality', 'idempotency_key'];
  text_chars constant integer[] := array[100, public.lead_text_limit('name'), public.lead_text_limit('email'),
    public.lead_text_limit('phone_raw'), public.lead_text_limit('message'), public.lead_text_limit('source'),
    public.lead_text_limit('session_id'), public.lead_text_limit('property_id'),
    public.lead_text_limit('property_title'), public.lead_text_limit('budget'), public.lead_text_limit('timeline'),
    public.lead_text_limit('financing'), 100, public.lead_text_limit('idempotency_key')];
  text_value text;
  given_pairs text[] := '{}';  -- the text fields that passed: key, value, key, value...
  arrived timestamptz := now();
  api_role boolean := current_setting('role', true) in ('anon', 'authenticated');
  problems jsonb;
  given jsonb;           -- the text fields that passed their checks, cleaned
  objects jsonb := '{}'; -- metadata and device_info, where they passed theirs
  transcript jsonb;      -- the messages, cleaned
  item record;
  item_path text;
  object_key text;
  object_value jsonb;
  phone text;
  phone_valid boolean;
  parsed record;
  region text;
  fingerprint text;
  key_claim text;
  fingerprint_claim text;
  taken_claims text[];
  holder record;
  held_lead uuid;
  lead_id uuid := gen_random_uuid();
  lead public.conversations;
begin
  if api_role then
    perform public.check_api_rate_limit(public.api_client_address(), arrived);
  end if;

  if jsonb_typeof(payload) is distinct from 'object' then
    raise exception using
      errcode = '22023',
      message = 'invalid lead',
      detail = jsonb_build_object('payload', 'must be a JSON object')::text;
  end if;
  -- A transcript of more messages than its limit is named as such (below), however large: a
  -- body within the HTTP intake's limit can render longer than it as jsonb text.
  if not coalesce(jsonb_array_length(case when jsonb_typeof(payload -> 'messages') = 'array' then payload -> 'messages' end)
                  > public.intake_limit('messages'), false)
     and octet_length(payload::text) > public.intake_limit('payload_bytes') then
    raise exception using
      errcode = 'PT413',
      message = 'payload_too_large',
      detail = jsonb_build_object('payload', format('must be at most %s bytes', public.intake_limit('payload_bytes')))::text;
  end if;

  -- Every text field: a string, within its length once trimmed. A loop of plain
  -- expressions, as few as a field takes (each costs as much as the work it does): a query
  -- over the list cost three times as much. A field that is absent, JSON null or blank once
  -- trimmed is skipped at once (any other JSON value reads as text that is not blank).
  problems := '{}';
  for i in 1 .. array_length(text_fields, 1) loop
    text_value := btrim(payload ->> text_fields[i], whitespace);
    continue when text_value is null or text_value = '';
    if jsonb_typeof(payload -> text_fields[i]) <> 'string' then
      problems := problems || jsonb_build_object(text_fields[i], 'must be a string');
    elsif char_length(text_value) > text_chars[i] then
      problems := problems || jsonb_build_object(text_fields[i], format('must be at most %s characters', text_chars[i]));
    else
      given_pairs := given_pairs || array[text_fields[i], text_value];
    end if;
  end loop;
  given := jsonb_object(given_pairs);

  -- The objects are kept apart from the text fields, so that the steps below do not copy them.
  foreach object_key in array array['metadata', 'device_info'] loop
    object_value := payload -> object_key;
    if jsonb_typeof(object_value) is null or jsonb_typeof(object_value) = 'null' then
      continue;
    elsif jsonb_typeof(object_value) <> 'object' then
      problems := problems || jsonb_build_object(object_key, 'must be a JSON object');
    elsif octet_length(object_value::text) > public.intake_limit('object_bytes') then
      problems := problems || jsonb_build_object(object_key, 'must be at most 8 KiB');
    else
      objects := jsonb_set(objects, array[object_key], object_value);
    end if;
  end loop;

  if not problems ? 'form' then
    if not given ? 'form' then
      problems := problems || jsonb_build_object('form', 'is required');
    elsif not (given ->> 'form' = any (enum_range(null::public.lead_form)::text[])) then
      problems := problems || jsonb_build_object('form',
        'must be one of ' || array_to_string(enum_range(null::public.lead_form), ', '));
      given := given - 'form';
    end if;
  end if;

  if given ? 'email' then
    given := given || jsonb_build_object('email', lower(given ->> 'email'));
    if given ->> 'email' !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' then
      problems := problems || jsonb_build_object('email', 'must be a valid email address');
      given := given - 'email';
    end if;
  end if;

  -- The phone is kept as typed; its E.164 form only when valid for its country: the number's
  -- own (+/00), else metadata.country, else the configured default region.
  if given ? 'phone' then
    region := nullif(btrim(objects -> 'metadata' ->> 'country'), '');
    if region is null then
      select s.default_phone_region into region from leadrelay_private.intake_settings s;
    end if;
    parsed := public.parse_phone(given ->> 'phone', region);
    phone := parsed.e164;
    phone_valid := parsed.valid;
    -- Not a number at all: refused when it is the only way to reach the person.
    if not phone_valid and not given ? 'email'
       and regexp_replace(given ->> 'phone', '[[:space:]().\-/+]', '', 'g') !~ '^[0-9]{7,20}$' then
      problems := problems || jsonb_build_object('phone', 'must be a phone number');
      given := given - 'phone';
    end if;
  end if;

  -- No usable email or phone. One sent as another type than a string is named as such
  -- alone: whether it would reach the person cannot be judged.
  if not (given ? 'email' or given ? 'phone')
     and coalesce(jsonb_typeof(payload -> 'email'), 'null') in ('string', 'null')
     and coalesce(jsonb_typeof(payload -> 'phone'), 'null') in ('string', 'null') then
    problems := problems || jsonb_build_object('contact', 'an email or a phone is required');
  end if;

  if given ->> 'form' = 'property_inquiry' and not given ? 'property_id' and not problems ? 'property_id' then
    problems := problems || jsonb_build_object('property_id', 'is required for a property inquiry');
  end if;

  if given ? 'quality' then
    if not (given ->> 'quality' = any (enum_range(null::public.lead_quality)::text[])) then
      problems := problems || jsonb_build_object('quality',
        'must be one of ' || array_to_string(enum_range(null::public.lead_quality), ', '));
    elsif given ->> 'form' is distinct from 'chatbot' then
      problems := problems || jsonb_build_object('quality', 'only a chatbot lead may state its quality');
    end if;
  end if;

  if given ? 'idempotency_key' and given ->> 'idempotency_key' !~ '^[A-Za-z0-9._:~+/=-]+$' then
    problems := problems || jsonb_build_object('idempotency_key',
      'must be letters, digits and . _ : ~ + / = - only');
  end if;

  if coalesce(jsonb_typeof(payload -> 'messages'), 'null') <> 'null' then
    if jsonb_typeof(payload -> 'messages') <> 'array' then
      problems := problems || jsonb_build_object('messages', 'must be an array');
    elsif jsonb_array_length(payload -> 'messages') > public.intake_limit('messages') then
      problems := problems || jsonb_build_object('messages',
        format('must hold at most %s messages', public.intake_limit('messages')));
    else
      transcript := '[]';
      for item in
        select m.value, m.ordinality - 1 as position
          from jsonb_array_elements(payload -> 'messages') with ordinality as m
      loop
        item_path := format('messages[%s]', item.position);
        if jsonb_typeof(item.value) <> 'object' then
          problems := problems || jsonb_build_object(item_path, 'must be an object');
          continue;
        end if;
        if coalesce(jsonb_typeof(item.value -> 'role'), 'null') not in ('string', 'null') then
          problems := problems || jsonb_build_object(item_path || '.role', 'must be a string');
        elsif item.value ->> 'role' is null or item.value ->> 'role' not in ('user', 'assistant') then
          problems := problems || jsonb_build_object(item_path || '.role', 'must be user or assistant');
        end if;
        if coalesce(jsonb_typeof(item.value -> 'content'), 'null') not in ('string', 'null') then
          problems := problems || jsonb_build_object(item_path || '.content', 'must be a string');
        elsif item.value ->> 'content' is null or btrim(item.value ->> 'content', whitespace) = '' then
          problems := problems || jsonb_build_object(item_path || '.content', 'must be a non-empty string');
        elsif char_length(btrim(item.value ->> 'content', whitespace)) > public.intake_limit('message_chars') then
          problems := problems || jsonb_build_object(item_path || '.content',
            format('must be at most %s characters', public.intake_limit('message_chars')));
        end if;
        if coalesce(jsonb_typeof(item.value -> 'at'), 'null') <> 'null' then
          if jsonb_typeof(item.value -> 'at') <> 'string' then
            problems := problems || jsonb_build_object(item_path || '.at', 'must be a string');
            continue;
          end if;
          begin
            -- Finite and in this century, as chat_messages_sent_at_range_check wants.
            if not ((item.value ->> 'at')::timestamptz >= '2000-01-01 00:00:00+00'
                    and (item.value ->> 'at')::timestamptz < '2100-01-01 00:00:00+00') then
              problems := problems || jsonb_build_object(item_path || '.at', 'must be a time in the years 2000 to 2099');
            end if;
          exception when data_exception then
            problems := problems || jsonb_build_object(item_path || '.at', 'must be a timestamp with a time zone');
          end;
        end if;
        continue when problems <> '{}';
        transcript := transcript || jsonb_build_array(jsonb_build_object(
          'role', item.value ->> 'role',
          'content', btrim(item.value ->> 'content', whitespace),
          'at', (item.value ->> 'at')::timestamptz));
      end loop;
      if jsonb_array_length(transcript) = 0 then
        transcript := null;
      end if;
    end if;
  end if;

  if problems <> '{}' then
    raise exception using errcode = '22023', message = 'invalid lead', detail = problems::text;
  end if;

  -- What the visitor sent, all of it, normalised: a replay has the same fingerprint.
  fingerprint := encode(sha256(convert_to(
    ((given - 'idempotency_key') || jsonb_build_object('messages', transcript) || objects)::text, 'UTF8')), 'hex');

  -- The key's claim (24 hours) and the payload's (10 minutes), taken in one statement, the
  -- key's first. A claim is a primary key: a claim held (unexpired) is not taken, and one that
  -- a concurrent call is taking is waited for, so identical calls meet here.
  if given ? 'idempotency_key' then
    key_claim := format('key:%s:%s', given ->> 'form', given ->> 'idempotency_key');
  end if;
  fingerprint_claim := 'fingerprint:' || fingerprint;
  with taken as (
    insert into leadrelay_private.intake_claims as c (claim, fingerprint, conversation_id, expires_at)
    select w.claim, fingerprint, lead_id, w.expires_at
      from (values
              (key_claim, arrived + make_interval(secs => public.intake_limit('idempotency_key_seconds'))),
              (fingerprint_claim, arrived + make_interval(secs => public.intake_limit('replay_window_seconds')))
           ) w (claim, expires_at)
     where w.claim is not null
    on conflict on constraint intake_claims_pkey do update
      set fingerprint = excluded.fingerprint,
          conversation_id = excluded.conversation_id,
          expires_at = excluded.expires_at
      where c.expires_at <= arrived
    returning c.claim
  )
  select coalesce(array_agg(t.claim), '{}') into taken_claims from taken t;

  -- Held claims (a retry, a replay) are rare: only then is the holder read.
  if key_claim is not null and not key_claim = any (taken_claims) then
    holder := public.intake_claim_holder(key_claim, fingerprint, lead_id,
                arrived + make_interval(secs => public.intake_limit('idempotency_key_seconds')));
    if holder.held_lead is not null and holder.held_fingerprint <> fingerprint then
      raise exception using
        errcode = 'PT422',
        message = 'idempotency_key_reused',
        detail = jsonb_build_object('idempotency_key', given ->> 'idempotency_key')::text,
        hint = 'This Idempotency-Key was used for another lead in the last 24 hours; send a new key for a new lead.';
    end if;
    held_lead := holder.held_lead;
  end if;
  if held_lead is not null then
    -- The key's own retry: the payload's claim is not this call's to hold.
    if fingerprint_claim = any (taken_claims) then
      delete from leadrelay_private.intake_claims c where c.claim = fingerprint_claim;
    end if;
  elsif not fingerprint_claim = any (taken_claims) then
    holder := public.intake_claim_holder(fingerprint_claim, fingerprint, lead_id,
                arrived + make_interval(secs => public.intake_limit('replay_window_seconds')));
    held_lead := holder.held_lead;
    if held_lead is not null and key_claim is not null then
      -- A replay under a new key: the key names the lead it replays.
      update leadrelay_private.intake_claims c set conversation_id = held_lead where c.claim = key_claim;
    end if;
  end if;

  if held_lead is not null then
    select * into lead from public.conversations c where c.id = held_lead;
    return jsonb_build_object(
      'id', lead.id,
      'created', false,
      'quality', lead.quality,
      'lead_score', lead.lead_score,
      'sla_response_deadline', lead.sla_response_deadline
    );
  end if;

  insert into public.conversations (
    id, form, source, name, email, phone, phone_raw, phone_valid, message, session_id, property_id,
    property_title, budget, timeline, financing, quality, metadata, device_info, idempotency_key
  ) values (
    lead_id,
    (given ->> 'form')::public.lead_form,
    coalesce(given ->> 'source', 'website'),  -- the column default, which an explicit null would override
    given ->> 'name',
    given ->> 'email',
    phone,
    given ->> 'phone',
    phone_valid,
    given ->> 'message',
    given ->> 'session_id',
    given ->> 'property_id',
    given ->> 'property_title',
    given ->> 'budget',
    given ->> 'timeline',
    given ->> 'financing',
    (given ->> 'quality')::public.lead_quality,
    coalesce(objects -> 'metadata', '{}'),
    coalesce(objects -> 'device_info', '{}'),
    given ->> 'idempotency_key'
  )
  returning id, created_at, quality, lead_score, sla_response_deadline
  into lead.id, lead.created_at, lead.quality, lead.lead_score, lead.sla_response_deadline;

  -- The transcript when there is one; otherwise the form's message is the customer's first.
  if transcript is not null then
    insert into public.chat_messages (conversation_id, sender_type, content, sent_at)
    select lead.id,
           case m.value ->> 'role' when 'user' then 'customer' else 'bot' end::public.sender_type,
           m.value ->> 'content',
           coalesce((m.value ->> 'at')::timestamptz, lead.created_at)
      from jsonb_array_elements(transcript) with ordinality as m
     order by m.ordinality;
  elsif given ? 'message' then
    insert into public.chat_messages (conversation_id, sender_type, content, sent_at)
    values (lead.id, 'customer', given ->> 'message', lead.created_at);
  end if;

  -- Expired claims and rate-limit windows go a few hundred at a time, about once every 100
  -- leads: a few rows per lead, more than the two claims a lead adds.
  if random() < 0.01 then
    perform public.prune_intake(arrived);
  end if;

  return jsonb_build_object(
    'id', lead.id,
    'created', true,
    'quality', lead.quality,
    'lead_score', lead.lead_score,
    'sla_response_deadline', lead.sla_response_deadline
  );
end
$$;

revoke execute on function
  public.submit_lead(jsonb),
  public.intake_limit(text),
  public.api_client_address(),
  public.check_api_rate_limit(text, timestamptz),
  public.prune_intake(timestamptz, integer),
  public.intake_claim_holder(text, text, uuid, timestamptz)
from public, anon, authenticated;
grant execute on function public.submit_lead(jsonb) to anon, authenticated, service_role;
grant execute on function
  public.intake_limit(text),
  public.prune_intake(timestamptz, integer)
to service_role;

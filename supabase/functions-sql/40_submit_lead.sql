-- The intake: one call saves a lead (the conversation, its first messages and, through the
-- triggers, its event, its timeline entry and its SLA deadline) in one transaction. Callable
-- by anon through PostgREST (POST /rest/v1/rpc/submit_lead {"payload": {...}}) and by the Go
-- service.
--
-- payload: form ('contact_form' | 'property_inquiry' | 'chatbot', required), name, email,
-- phone, message, source, metadata (object; metadata.country picks the phone's calling code),
-- device_info (object), property_id (required for a property inquiry), property_title,
-- budget, timeline, financing, session_id, quality ('hot' | 'warm' | 'cold', a chatbot's
-- own judgement), messages ([{role: 'user' | 'assistant', content, at}], saved in order;
-- user is the customer, assistant the bot) and idempotency_key. Other keys are ignored.
-- Blank strings count as absent.
--
-- A bad payload raises SQLSTATE 22023, message 'invalid lead', and a DETAIL that is a JSON
-- object naming every bad field: {"email": "must be a valid email address", "contact": "an
-- email or a phone is required", "messages[2].role": "must be user or assistant"}.
--
-- Returns {"id", "created", "quality", "lead_score", "sla_response_deadline"}; created is
-- false when the lead already existed: the same idempotency_key, or, without a key, the same
-- form, contact and message within 10 minutes.
create or replace function public.submit_lead(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  whitespace constant text := E' \t\r\n';
  problems jsonb := '{}';
  given jsonb := '{}';   -- the fields that passed their checks, cleaned
  field record;
  object_key text;
  item record;
  item_path text;
  value text;
  phone text;
  duplicate_key text;
  lead public.conversations;
  created boolean := false;
begin
  if jsonb_typeof(payload) is distinct from 'object' then
    raise exception using
      errcode = '22023',
      message = 'invalid lead',
      detail = jsonb_build_object('payload', 'must be a JSON object')::text;
  end if;

  -- The limits are the table's check constraints, restated so each bad field gets a message.
  for field in
    select * from (values
      ('form', 100), ('name', 200), ('email', 254), ('phone', 32), ('message', 5000),
      ('source', 100), ('session_id', 200), ('property_id', 300), ('property_title', 300),
      ('budget', 300), ('timeline', 300), ('financing', 300), ('quality', 100),
      ('idempotency_key', 200)
    ) as f (key, max_length)
  loop
    continue when coalesce(jsonb_typeof(payload -> field.key), 'null') = 'null';
    if jsonb_typeof(payload -> field.key) <> 'string' then
      problems := problems || jsonb_build_object(field.key, 'must be a string');
      continue;
    end if;
    value := btrim(payload ->> field.key, whitespace);
    continue when value = '';
    if char_length(value) > field.max_length then
      problems := problems || jsonb_build_object(field.key, format('must be at most %s characters', field.max_length));
    else
      given := given || jsonb_build_object(field.key, value);
    end if;
  end loop;

  foreach object_key in array array['metadata', 'device_info'] loop
    continue when coalesce(jsonb_typeof(payload -> object_key), 'null') = 'null';
    if jsonb_typeof(payload -> object_key) <> 'object' then
      problems := problems || jsonb_build_object(object_key, 'must be a JSON object');
    elsif octet_length((payload -> object_key)::text) > 8192 then
      problems := problems || jsonb_build_object(object_key, 'must be at most 8 KiB');
    else
      given := given || jsonb_build_object(object_key, payload -> object_key);
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

  if given ? 'phone' then
    phone := public.normalize_phone(given ->> 'phone', given -> 'metadata' ->> 'country');
    if phone is null then
      problems := problems || jsonb_build_object('phone', 'must be a valid phone number');
      given := given - 'phone';
    else
      given := given || jsonb_build_object('phone', phone);
    end if;
  end if;

  if not (given ? 'email' or given ? 'phone') then
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

  if coalesce(jsonb_typeof(payload -> 'messages'), 'null') <> 'null' then
    if jsonb_typeof(payload -> 'messages') <> 'array' then
      problems := problems || jsonb_build_object('messages', 'must be an array');
    elsif jsonb_array_length(payload -> 'messages') > 200 then
      problems := problems || jsonb_build_object('messages', 'must hold at most 200 messages');
    else
      for item in
        select m.value, m.ordinality - 1 as position
          from jsonb_array_elements(payload -> 'messages') with ordinality as m
      loop
        item_path := format('messages[%s]', item.position);
        if jsonb_typeof(item.value) <> 'object' then
          problems := problems || jsonb_build_object(item_path, 'must be an object');
          continue;
        end if;
        if jsonb_typeof(item.value -> 'role') is distinct from 'string'
           or item.value ->> 'role' not in ('user', 'assistant') then
          problems := problems || jsonb_build_object(item_path || '.role', 'must be user or assistant');
        end if;
        if jsonb_typeof(item.value -> 'content') is distinct from 'string'
           or btrim(item.value ->> 'content', whitespace) = '' then
          problems := problems || jsonb_build_object(item_path || '.content', 'must be a non-empty string');
        elsif char_length(btrim(item.value ->> 'content', whitespace)) > 5000 then
          problems := problems || jsonb_build_object(item_path || '.content', 'must be at most 5000 characters');
        end if;
        if coalesce(jsonb_typeof(item.value -> 'at'), 'null') <> 'null' then
          begin
            if jsonb_typeof(item.value -> 'at') <> 'string' then
              raise sqlstate '22007';
            end if;
            perform (item.value ->> 'at')::timestamptz;
          exception when data_exception then
            problems := problems || jsonb_build_object(item_path || '.at', 'must be a timestamp with a time zone');
          end;
        end if;
      end loop;
    end if;
  end if;

  if problems <> '{}' then
    raise exception using errcode = '22023', message = 'invalid lead', detail = problems::text;
  end if;

  if given ? 'idempotency_key' then
    select * into lead from public.conversations c where c.idempotency_key = given ->> 'idempotency_key';
  else
    duplicate_key := public.lead_dedup_key((given ->> 'form')::public.lead_form, given ->> 'email', given ->> 'phone', given ->> 'message');
    -- Two identical submissions at once: the second waits here until the first commits, then finds it.
    perform pg_advisory_xact_lock(hashtextextended('leadrelay.lead_dedup:' || duplicate_key, 0));
    select * into lead
      from public.conversations c
     where c.dedup_key = duplicate_key
       and c.created_at > now() - interval '10 minutes'
     order by c.created_at desc
     limit 1;
  end if;

  if lead.id is null then
    insert into public.conversations (
      form, source, name, email, phone, message, session_id, property_id, property_title,
      budget, timeline, financing, quality, metadata, device_info, idempotency_key
    ) values (
      (given ->> 'form')::public.lead_form,
      coalesce(given ->> 'source', 'website'),  -- the column default, which an explicit null would override
      given ->> 'name',
      given ->> 'email',
      given ->> 'phone',
      given ->> 'message',
      given ->> 'session_id',
      given ->> 'property_id',
      given ->> 'property_title',
      given ->> 'budget',
      given ->> 'timeline',
      given ->> 'financing',
      (given ->> 'quality')::public.lead_quality,
      coalesce(given -> 'metadata', '{}'),
      coalesce(given -> 'device_info', '{}'),
      given ->> 'idempotency_key'
    )
    on conflict (idempotency_key) do nothing
    returning * into lead;

    if lead.id is null then
      -- A concurrent call with the same idempotency key committed first.
      select * into lead from public.conversations c where c.idempotency_key = given ->> 'idempotency_key';
    else
      created := true;
      -- The transcript when there is one; otherwise the form's message is the customer's first.
      if jsonb_typeof(payload -> 'messages') = 'array' and jsonb_array_length(payload -> 'messages') > 0 then
        insert into public.chat_messages (conversation_id, sender_type, content, sent_at)
        select lead.id,
               case m.value ->> 'role' when 'user' then 'customer' else 'bot' end::public.sender_type,
               btrim(m.value ->> 'content', whitespace),
               coalesce((m.value ->> 'at')::timestamptz, lead.created_at)
          from jsonb_array_elements(payload -> 'messages') with ordinality as m
         order by m.ordinality;
      elsif given ? 'message' then
        insert into public.chat_messages (conversation_id, sender_type, content, sent_at)
        values (lead.id, 'customer', given ->> 'message', lead.created_at);
      end if;
    end if;
  end if;

  return jsonb_build_object(
    'id', lead.id,
    'created', created,
    'quality', lead.quality,
    'lead_score', lead.lead_score,
    'sla_response_deadline', lead.sla_response_deadline
  );
end
$$;

revoke execute on function public.submit_lead(jsonb) from public;
grant execute on function public.submit_lead(jsonb) to anon, authenticated, service_role;

-- The rules a lead is judged by: its score, its phone number's form, the person it belongs
-- to and its SLA times. Functions of their arguments (and sla_policies; lead_person reads and
-- writes person_contacts), so tests call them directly and the triggers and submit_lead share
-- one definition of each.

-- How many characters each text column of a lead holds: the one definition that submit_lead
-- checks a payload against (naming every field that is too long) and that the row rules
-- (15_row_rules.sql) check every write against. Immutable, so a call with a constant is
-- folded into the plan that makes it: it costs nothing per lead.
create or replace function public.lead_text_limit(col text)
returns integer
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return case col
  when 'source' then 100
  when 'name' then 200
  when 'email' then 254
  when 'phone' then 32            -- E.164, stored only when valid
  when 'phone_raw' then 64        -- the number as typed
  when 'message' then 5000
  when 'session_id' then 200
  when 'property_id' then 300
  when 'property_title' then 300
  when 'budget' then 300
  when 'timeline' then 300
  when 'financing' then 300
  when 'idempotency_key' then 200
  end;
end
$$;

-- Lead scoring: points per signal, then a quality from the total (at most 100).
--   a phone number, valid for its country          20  (one that is not: 0, "phone could not be verified")
--   a specific property (property_id)               20
--   a short timeline                                25  asap, immediately, urgent(ly),
--        this/next week or month, 1-2 weeks, one month, 0-3 or 1-3 months
--   financing pre-approved or cash                  25
--   a budget                                        10
--   a returning person (an earlier inquiry)         10  engagement: they came back
-- HOT from 60 (say a phone, a property and a short timeline), WARM from 30, else COLD.
-- A quality stated at intake (the chatbot's own judgement) stands; the points are still
-- counted, and the first reason says the quality was stated.
-- plpgsql, not SQL: a SQL function with SET is never inlined and is planned on every call.
create or replace function public.score_lead(
  phone text,
  phone_raw text,
  property_id text,
  timeline text,
  financing text,
  budget text,
  person_inquiry integer default 1,
  person_inquiries_24h integer default 1,
  stated_quality public.lead_quality default null,
  out lead_score integer,
  out quality public.lead_quality,
  out reasons text[]
)
language plpgsql
immutable
set search_path = ''
as $$
begin
  lead_score := 0;
  reasons := '{}';
  if stated_quality is not null then
    reasons := array['quality stated at intake: ' || stated_quality::text];
  end if;
  if nullif(btrim(phone), '') is not null then
    lead_score := lead_score + 20;
    reasons := reasons || 'phone number given'::text;
  elsif nullif(btrim(phone_raw), '') is not null then
    reasons := reasons || 'phone could not be verified'::text;
  end if;
  if nullif(btrim(property_id), '') is not null then
    lead_score := lead_score + 20;
    reasons := reasons || 'asks about a specific property'::text;
  end if;
  if timeline ~* '\m(asap|immediately|urgent(ly)?|(this|next) (week|month)|(1|one|2|two) weeks?|(1|one|a) month|[01] ?- ?3 months?)\M' then
    lead_score := lead_score + 25;
    reasons := reasons || ('short timeline: ' || btrim(timeline));
  end if;
  if financing ~* '\m(pre[- ]?approved|cash)\M' then
    lead_score := lead_score + 25;
    reasons := reasons || ('financing: ' || btrim(financing));
  end if;
  if nullif(btrim(budget), '') is not null then
    lead_score := lead_score + 10;
    reasons := reasons || ('budget given: ' || btrim(budget));
  end if;
  if person_inquiry > 1 then
    lead_score := lead_score + 10;
    reasons := reasons || ('returning lead: ' || public.returning_note(person_inquiry, person_inquiries_24h));
  end if;
  lead_score := least(lead_score, 100);
  quality := coalesce(
    stated_quality,
    case when lead_score >= 60 then 'hot' when lead_score >= 30 then 'warm' else 'cold' end::public.lead_quality
  );
end
$$;

-- 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st, ...
create or replace function public.ordinal(n integer)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return n::text || case
    when n % 100 between 11 and 13 then 'th'
    when n % 10 = 1 then 'st'
    when n % 10 = 2 then 'nd'
    when n % 10 = 3 then 'rd'
    else 'th'
  end;
end
$$;

-- A duration as the timeline says it to a person: its largest unit and the next one, in
-- whole seconds: "15 min", "1 h 30 min", "1 day 2 h", "2 min 5 s", "45 s", "0 s" (where
-- justify_interval said "00:15:00" and "1 day 02:00:00").
create or replace function public.duration_text(d interval)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  s bigint := floor(abs(extract(epoch from d)));
  amounts bigint[] := array[s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60];
  units text[] := array[' day', ' h', ' min', ' s'];
  said text;
begin
  for i in 1..4 loop
    if amounts[i] > 0 then
      said := amounts[i] || units[i] || case when i = 1 and amounts[i] > 1 then 's' else '' end;
      if i < 4 and amounts[i + 1] > 0 then
        said := said || ' ' || amounts[i + 1] || units[i + 1];
      end if;
      return case when d < interval '0' then '-' else '' end || said;
    end if;
  end loop;
  return '0 s';
end
$$;

-- How a returning person's lead is described, in the timeline, the score reasons and the
-- alerts: "3rd inquiry in 24 h" when earlier ones came within 24 hours, else "2nd inquiry".
create or replace function public.returning_note(person_inquiry integer, person_inquiries_24h integer)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return case
    when person_inquiry <= 1 then null
    when person_inquiries_24h > 1 then public.ordinal(person_inquiries_24h) || ' inquiry in 24 h'
    else public.ordinal(person_inquiry) || ' inquiry'
  end;
end
$$;

-- The person an email and a valid phone belong to: the email's person if the email was seen,
-- else the phone's, else a new person. Contacts not seen before join that person. Concurrent
-- leads of one new contact meet at person_contacts' primary key, so they get one person.
-- Returns null when there is neither.
-- new_person is the id a person seen for the first time gets: the answer is new_person
-- exactly when neither contact was known, so the caller knows the person has no earlier lead.
create or replace function public.lead_person(email text, phone text, new_person uuid)
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  email_contact text := 'email:' || lower(email);
  phone_contact text := 'phone:' || phone;
  person uuid;
  by_phone uuid;
begin
  if email is null and phone is null then
    return null;
  end if;
  -- Insert first: a new contact costs one insert. A contact seen before (or taken by a
  -- concurrent lead, which is waited for) is locked instead, which orders a person's
  -- concurrent leads so each counts the ones before it.
  if email is not null then
    insert into leadrelay_private.person_contacts as pc (contact, person_id)
    values (email_contact, new_person)
    on conflict (contact) do nothing
    returning pc.person_id into person;
    if person is null then
      select pc.person_id into person from leadrelay_private.person_contacts pc
       where pc.contact = email_contact for update;
      if phone is null then
        return person;
      end if;
    end if;
  end if;
  if phone is not null then
    insert into leadrelay_private.person_contacts as pc (contact, person_id)
    values (phone_contact, coalesce(person, new_person))
    on conflict (contact) do nothing
    returning pc.person_id into by_phone;
    if by_phone is null then
      select pc.person_id into by_phone from leadrelay_private.person_contacts pc
       where pc.contact = phone_contact for update;
      if person = new_person then
        -- A new email with a known phone: the email joins the phone's person.
        update leadrelay_private.person_contacts pc set person_id = by_phone where pc.contact = email_contact;
        person := by_phone;
      end if;
    end if;
    person := coalesce(person, by_phone);
  end if;
  return person;
end
$$;

-- A phone number by libphonenumber's rules (its metadata in leadrelay_private.phone_regions,
-- generated from github.com/nyaruka/phonenumbers by tools/phonemeta; the Go tests compare this
-- function with the library on every region's example numbers). e164 is the number in E.164
-- form, set only when valid is true: never a guess.
--   raw     the number as typed: digits, an optional leading + (or 00, read as +), and the
--           separators space ( ) . - /. Anything else (letters, an extension) is not verified.
--   region  ISO 3166 alpha-2, the country of a number typed without +/00.
-- A number with +/00 is valid when it is valid for the region its digits name (IsValidNumber);
-- without, when it is valid for region (IsValidNumberForRegion). As libphonenumber does, a
-- national prefix (the trunk 0) is dropped, also after a country code ("+44 (0)20 ..."), and a
-- national number typed with its country code but no + is recognised. Regions whose national
-- prefix Postgres cannot match exactly as libphonenumber does (prefix_supported false: AR, BO,
-- BR, BY, CO, JP, KR) are never verified here.
create or replace function public.parse_phone(raw text, region text, out e164 text, out valid boolean)
language plpgsql
stable
set search_path = ''
as $$
declare
  number text := regexp_replace(raw, '[[:space:]().\-/]', '', 'g');
  meta leadrelay_private.phone_regions;
  candidate leadrelay_private.phone_regions;
  nsn text;
  stripped text;
  from_plus boolean;
  code text;
begin
  valid := false;
  if number like '00%' then
    number := '+' || substr(number, 3);
  end if;
  if number !~ '^\+?[0-9]{2,20}$' then
    return;
  end if;
  from_plus := number like '+%';

  if from_plus then
    -- Country codes are prefix-free: the first 1 to 3 digits that are one.
    select r.* into meta
      from generate_series(1, 3) n
      join leadrelay_private.phone_regions r
        on r.country_code = substr(number, 2, n)::integer and r.ord = 0
     order by n
     limit 1;
    if meta.region is null then
      return;
    end if;
    nsn := substr(number, 2 + char_length(meta.country_code::text));
  else
    select r.* into meta from leadrelay_private.phone_regions r where r.region = upper(btrim(parse_phone.region));
    if meta.region is null then
      return;
    end if;
    nsn := number;
    code := meta.country_code::text;
    -- Typed with the country code but without +: libphonenumber takes the code off when the
    -- number only makes sense without it, or is too long with it.
    if nsn like code || '%' then
      stripped := public.strip_national_prefix(substr(nsn, char_length(code) + 1), meta);
      if (nsn !~ meta.general_pattern and stripped ~ meta.general_pattern)
         or char_length(nsn) > meta.general_lengths[array_upper(meta.general_lengths, 1)] then
        nsn := stripped;
      end if;
    end if;
  end if;
  if not meta.prefix_supported or char_length(nsn) < 2 then
    return;
  end if;

  stripped := public.strip_national_prefix(nsn, meta);
  -- The stripped number is kept unless it became too short, local-only or of no possible length.
  if meta.general_lengths[1] <> -1
     and not (char_length(stripped) = any (meta.local_lengths))
     and char_length(stripped) >= meta.general_lengths[1]
     and (char_length(stripped) = any (meta.general_lengths)
          or char_length(stripped) > meta.general_lengths[array_upper(meta.general_lengths, 1)]) then
    nsn := stripped;
  end if;
  if char_length(nsn) < 2 or char_length(nsn) > 17 then
    return;
  end if;

  if from_plus then
    -- The region of a shared country code: the first, in libphonenumber's order, whose leading
    -- digits begin the number, or (without leading digits) whose patterns it matches.
    select r.* into candidate
      from leadrelay_private.phone_regions r
     where r.country_code = meta.country_code
       and case when r.leading_digits is not null
                then nsn ~ ('^(?:' || r.leading_digits || ')')
                else nsn ~ r.valid_pattern end
     order by r.ord
     limit 1;
    if candidate.region is null then
      return;
    end if;
    meta := candidate;
  end if;
  -- libphonenumber's getNumberTypeHelper != UNKNOWN: the general description's lengths and
  -- pattern, and one number type's, all in one regular expression per region (compiled once
  -- per connection).
  if nsn ~ meta.valid_pattern then
    valid := true;
    e164 := '+' || meta.country_code || nsn;
  end if;
end
$$;

-- libphonenumber's maybeStripNationalPrefixAndCarrierCode: the national prefix off the front
-- (or the region's transform applied), unless that turns a number that matched the region's
-- general pattern into one that does not.
create or replace function public.strip_national_prefix(number text, meta leadrelay_private.phone_regions)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  groups text[];
  rest text;
begin
  if number = '' or meta.national_prefix is null or number !~ meta.national_prefix then
    return number;
  end if;
  if meta.national_prefix_groups > 0 then
    groups := regexp_match(number, meta.national_prefix);
  end if;
  if meta.national_prefix_transform is null or groups is null or groups[meta.national_prefix_groups] is null then
    rest := regexp_replace(number, meta.national_prefix, '');
  else
    rest := regexp_replace(number, meta.national_prefix, meta.national_prefix_transform);
  end if;
  if number ~ meta.general_pattern and rest !~ meta.general_pattern then
    return number;
  end if;
  return rest;
end
$$;

-- When a lead of a quality that arrived at arrived_at must be answered, and when to warn.
create or replace function public.sla_times(
  lead_quality public.lead_quality,
  arrived_at timestamptz,
  out response_deadline timestamptz,
  out warning_at timestamptz
)
language plpgsql
stable
set search_path = ''
as $$
begin
  select arrived_at + p.response_window,
         arrived_at + p.response_window - least(p.warn_before, p.response_window / 2)
    into response_deadline, warning_at
    from public.sla_policies p
   where p.quality = lead_quality;
  if not found then
    raise exception 'no SLA policy for % leads', lead_quality
      using hint = 'Add a row to public.sla_policies.';
  end if;
end
$$;

revoke execute on function
  public.lead_text_limit(text),
  public.score_lead(text, text, text, text, text, text, integer, integer, public.lead_quality),
  public.ordinal(integer),
  public.duration_text(interval),
  public.returning_note(integer, integer),
  public.lead_person(text, text, uuid),
  public.parse_phone(text, text),
  public.strip_national_prefix(text, leadrelay_private.phone_regions),
  public.sla_times(public.lead_quality, timestamptz)
from public, anon, authenticated;

grant execute on function
  public.lead_text_limit(text),
  public.score_lead(text, text, text, text, text, text, integer, integer, public.lead_quality),
  public.ordinal(integer),
  public.duration_text(interval),
  public.returning_note(integer, integer),
  public.sla_times(public.lead_quality, timestamptz)
to service_role;

-- lead_person once drew the new person's id itself; the trigger passes it in now.
drop function if exists public.lead_person(text, text);

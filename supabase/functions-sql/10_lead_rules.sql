-- The rules a lead is judged by: its score, its phone number's form, the person it belongs
-- to and its SLA times. Functions of their arguments (and sla_policies; lead_person reads and
-- writes person_contacts), so tests call them directly and the triggers and submit_lead share
-- one definition of each.

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
create or replace function public.lead_person(email text, phone text)
returns uuid
language plpgsql
volatile
set search_path = ''
as $$
declare
  email_contact text := 'email:' || lower(email);
  phone_contact text := 'phone:' || phone;
  person uuid;
  claimed uuid;
begin
  if email is null and phone is null then
    return null;
  end if;
  -- The lock orders a person's concurrent leads, so each counts the ones before it.
  select pc.person_id into person from leadrelay_private.person_contacts pc
   where pc.contact = email_contact for update;
  if person is null and phone is not null then
    select pc.person_id into person from leadrelay_private.person_contacts pc
     where pc.contact = phone_contact for update;
  end if;
  if person is not null and (email is null or phone is null) then
    return person;
  end if;

  if email is not null then
    insert into leadrelay_private.person_contacts as pc (contact, person_id)
    values (email_contact, coalesce(person, gen_random_uuid()))
    on conflict (contact) do nothing
    returning pc.person_id into claimed;
    if claimed is null then
      -- Seen before, or taken by a concurrent lead that has now committed: its person.
      select pc.person_id into claimed from leadrelay_private.person_contacts pc
       where pc.contact = email_contact for update;
    end if;
    person := claimed;
  end if;
  if phone is not null then
    insert into leadrelay_private.person_contacts as pc (contact, person_id)
    values (phone_contact, coalesce(person, gen_random_uuid()))
    on conflict (contact) do nothing
    returning pc.person_id into claimed;
    if person is null then
      if claimed is null then
        select pc.person_id into claimed from leadrelay_private.person_contacts pc
         where pc.contact = phone_contact for update;
      end if;
      person := claimed;
    end if;
  end if;
  return person;
end
$$;

-- A phone number in the form the team dials. Spaces, dashes, dots and parentheses go, and a
-- 00 prefix becomes +. With a +, it must be + and 8 to 15 digits (E.164). Without one, and
-- with a country below (metadata.country, ISO 3166 alpha-2), the national number gets that
-- country's calling code: a trunk 0 is dropped, and digits that already start with the code
-- and number more than 10 are taken as an international number typed without its +.
-- Otherwise the digits stay as given (7 to 15 of them). Null when it is not a phone number.
create or replace function public.normalize_phone(phone text, country text default null)
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  digits text := regexp_replace(phone, '[[:space:]().-]', '', 'g');
  calling_code text;
begin
  if digits like '00%' then
    digits := '+' || substr(digits, 3);
  end if;
  if digits like '+%' then
    return case when digits ~ '^\+[0-9]{8,15}$' then digits end;
  end if;
  if digits !~ '^[0-9]{7,15}$' then
    return null;
  end if;

  calling_code := case upper(btrim(country))
    when 'AE' then '971' when 'SA' then '966' when 'QA' then '974' when 'KW' then '965'
    when 'BH' then '973' when 'OM' then '968' when 'JO' then '962' when 'LB' then '961'
    when 'EG' then '20'  when 'TR' then '90'  when 'IR' then '98'  when 'GB' then '44'
    when 'IE' then '353' when 'US' then '1'   when 'CA' then '1'   when 'IN' then '91'
    when 'PK' then '92'  when 'BD' then '880' when 'LK' then '94'  when 'NP' then '977'
    when 'PH' then '63'  when 'DE' then '49'  when 'FR' then '33'  when 'IT' then '39'
    when 'ES' then '34'  when 'NL' then '31'  when 'BE' then '32'  when 'CH' then '41'
    when 'AT' then '43'  when 'SE' then '46'  when 'NO' then '47'  when 'DK' then '45'
    when 'PL' then '48'  when 'RU' then '7'   when 'KZ' then '7'   when 'UA' then '380'
    when 'CN' then '86'  when 'HK' then '852' when 'SG' then '65'  when 'MY' then '60'
    when 'ID' then '62'  when 'JP' then '81'  when 'KR' then '82'  when 'AU' then '61'
    when 'NZ' then '64'  when 'ZA' then '27'  when 'NG' then '234' when 'KE' then '254'
  end;
  if calling_code is null then
    return digits;
  end if;

  if digits like '0%' then
    digits := calling_code || substr(digits, 2);
  elsif not (digits like calling_code || '%' and char_length(digits) > 10) then
    digits := calling_code || digits;
  end if;
  return case when digits ~ '^[0-9]{8,15}$' then '+' || digits end;
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
  public.score_lead(text, text, text, text, text, text, integer, integer, public.lead_quality),
  public.ordinal(integer),
  public.returning_note(integer, integer),
  public.lead_person(text, text),
  public.normalize_phone(text, text),
  public.sla_times(public.lead_quality, timestamptz)
from public, anon, authenticated;

grant execute on function
  public.score_lead(text, text, text, text, text, text, integer, integer, public.lead_quality),
  public.ordinal(integer),
  public.returning_note(integer, integer),
  public.normalize_phone(text, text),
  public.sla_times(public.lead_quality, timestamptz)
to service_role;

-- The rules a lead is judged by: its score, its phone number's form, its duplicate key and
-- its SLA times. Pure functions of their arguments (and sla_policies), so tests call them
-- directly and the triggers and submit_lead share one definition of each.

-- Lead scoring: points per signal, then a quality from the total.
--   a phone number                                  20
--   a specific property (property_id)               20
--   a short timeline                                25  asap, immediately, urgent(ly),
--        this/next week or month, 1-2 weeks, one month, 0-3 or 1-3 months
--   financing pre-approved or cash                  25
--   a budget                                        10
-- HOT from 60 (say a phone, a property and a short timeline), WARM from 30, else COLD.
-- A quality stated at intake (the chatbot's own judgement) stands; the points are still
-- counted, and the first reason says the quality was stated.
create or replace function public.score_lead(
  phone text,
  property_id text,
  timeline text,
  financing text,
  budget text,
  stated_quality public.lead_quality default null
)
returns table (lead_score integer, quality public.lead_quality, reasons text[])
language sql
immutable
set search_path = ''
as $$
  with signal (ord, points, reason) as (
    select 1, 20, 'phone number given'
     where nullif(btrim(phone), '') is not null
    union all
    select 2, 20, 'asks about a specific property'
     where nullif(btrim(property_id), '') is not null
    union all
    select 3, 25, 'short timeline: ' || btrim(timeline)
     where timeline ~* '\m(asap|immediately|urgent(ly)?|(this|next) (week|month)|(1|one|2|two) weeks?|(1|one|a) month|[01] ?- ?3 months?)\M'
    union all
    select 4, 25, 'financing: ' || btrim(financing)
     where financing ~* '\m(pre[- ]?approved|cash)\M'
    union all
    select 5, 10, 'budget given: ' || btrim(budget)
     where nullif(btrim(budget), '') is not null
  ),
  total (score, reasons) as (
    select coalesce(sum(points), 0)::integer,
           coalesce(array_agg(reason order by ord), '{}')
      from signal
  )
  select
    score,
    coalesce(
      stated_quality,
      case when score >= 60 then 'hot' when score >= 30 then 'warm' else 'cold' end::public.lead_quality
    ),
    case
      when stated_quality is null then reasons
      else array['quality stated at intake: ' || stated_quality::text] || reasons
    end
  from total
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

-- The key of the intake's duplicate window: the same form, contact and message. Inputs are
-- the values as stored (email lower-cased, phone normalised).
create or replace function public.lead_dedup_key(form public.lead_form, email text, phone text, message text)
returns text
language sql
stable
set search_path = ''
as $$
  select encode(
    sha256(convert_to(jsonb_build_array(form, lower(email), phone, coalesce(message, ''))::text, 'UTF8')),
    'hex'
  )
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
  public.score_lead(text, text, text, text, text, public.lead_quality),
  public.normalize_phone(text, text),
  public.lead_dedup_key(public.lead_form, text, text, text),
  public.sla_times(public.lead_quality, timestamptz)
from public, anon, authenticated;

grant execute on function
  public.score_lead(text, text, text, text, text, public.lead_quality),
  public.normalize_phone(text, text),
  public.lead_dedup_key(public.lead_form, text, text, text),
  public.sla_times(public.lead_quality, timestamptz)
to service_role;

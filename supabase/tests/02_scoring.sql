-- Lead scoring and phone numbers: the rules a lead is judged by.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;

select plan(42);

-- score_lead(phone, phone_raw, property_id, timeline, financing, budget, person_inquiry,
-- person_inquiries_24h, stated_quality)
select results_eq(
  $$select lead_score, quality::text, reasons from score_lead(null, null, null, null, null, null)$$,
  $$values (0, 'cold', '{}'::text[])$$,
  'a lead with no signal is COLD with no reasons'
);
select results_eq(
  $$select lead_score, quality::text, reasons from score_lead('+971501234567', '+971501234567', null, null, null, ' ')$$,
  $$values (20, 'cold', array['phone number given'])$$,
  'a phone alone is COLD (20); a blank budget is no budget'
);
select results_eq(
  $$select lead_score, quality::text from score_lead('+971501234567', '+971501234567', null, null, null, 'AED 2M')$$,
  $$values (30, 'warm')$$,
  'a phone and a budget reach WARM (30)'
);
select results_eq(
  $$select lead_score, quality::text from score_lead(null, null, 'prop-1', null, 'mortgage', null)$$,
  $$values (20, 'cold')$$,
  'a property with an ordinary mortgage stays COLD'
);
select results_eq(
  $$select lead_score, quality::text from score_lead('+971501234567', '+971501234567', 'prop-1', 'ASAP', null, null)$$,
  $$values (65, 'hot')$$,
  'a phone, a property and a short timeline are HOT (65)'
);
select results_eq(
  $$select lead_score, quality::text from score_lead(null, null, 'prop-1', 'asap', 'cash', null)$$,
  $$values (70, 'hot')$$,
  'a property, a short timeline and cash are HOT without a phone'
);
select results_eq(
  $$select lead_score, quality::text, reasons
      from score_lead('+971501234567', '+971501234567', 'prop-1', 'Immediately', 'Pre-approved mortgage', 'AED 3M')$$,
  $$values (100, 'hot', array[
      'phone number given',
      'asks about a specific property',
      'short timeline: Immediately',
      'financing: Pre-approved mortgage',
      'budget given: AED 3M'])$$,
  'every signal scores 100 and each is a reason, in a fixed order'
);

-- Which timelines are short.
select ok((select lead_score from score_lead(null, null, null, t, null, null)) = 25, format('timeline %L is short', t))
  from unnest(array['asap', 'within 1 month', 'this month', 'next week', '1-3 months', '0 - 3 months', 'in two weeks', 'urgently']) t;
select ok((select lead_score from score_lead(null, null, null, t, null, null)) = 0, format('timeline %L is not short', t))
  from unnest(array['3-6 months', '6+ months', '12 months', 'next year', 'just browsing']) t;

select ok((select lead_score from score_lead(null, null, null, null, f, null)) = 25, format('financing %L counts', f))
  from unnest(array['cash', 'Cash buyer', 'preapproved', 'pre approved']) f;

-- A stated quality stands, and the reasons say so.
select results_eq(
  $$select lead_score, quality::text, reasons from score_lead('+971501234567', '+971501234567', null, null, null, null, stated_quality => 'hot')$$,
  $$values (20, 'hot', array['quality stated at intake: hot', 'phone number given'])$$,
  'a stated quality stands over the points, and the first reason says it was stated'
);
select results_eq(
  $$select quality::text from score_lead('+971501234567', '+971501234567', 'prop-1', 'asap', 'cash', 'AED 1M', stated_quality => 'cold')$$,
  $$values ('cold')$$,
  'a stated COLD stands even when every signal is there'
);

-- parse_phone(phone, region): E.164 only when valid by libphonenumber's rules (the Go test
-- TestParsePhoneAgreesWithLibphonenumber compares thousands more with the library).
select is((select p.e164 from parse_phone(input, country) p), expected,
          format('phone %L (country %s) is %s', input, coalesce(country, 'none'), coalesce(expected, 'not verified')))
  from (values
    ('+971 50 123 4567', null, '+971501234567'),
    ('00971-50-123-4567', null, '+971501234567'),
    ('050 123 4567', 'AE', '+971501234567'),
    ('050.123.4567', 'ae', '+971501234567'),
    ('971501234567', 'AE', '+971501234567'),
    ('(201) 555-0123', 'US', '+12015550123'),
    ('050 123 4567', 'GB', null),
    ('050 123 4567', 'US', null),
    ('07400 123456', 'GB', '+447400123456'),
    ('050 123 4567', null, null),
    ('050 123 4567', 'ZZ', null),
    ('+12', null, null),
    ('+44 7400 123456 ext 5', null, null),
    ('call me', null, null),
    ('+44 (0) 7400 123456', 'AE', '+447400123456')
  ) as c (input, country, expected);

-- Durations as the timeline says them.
select results_eq(
  $$select public.duration_text(d) from (values
      (interval '15 minutes'), (interval '1 hour'), (interval '90 minutes'), (interval '24 hours'),
      (interval '26 hours 5 minutes'), (interval '3 days'), (interval '125.7 seconds'),
      (interval '45 seconds'), (interval '0'), (interval '-30 seconds')) as t (d)$$,
  $$values ('15 min'), ('1 h'), ('1 h 30 min'), ('1 day'), ('1 day 2 h'), ('3 days'), ('2 min 5 s'),
      ('45 s'), ('0 s'), ('-30 s')$$,
  'duration_text says a duration in its two largest units'
);

select * from finish();
rollback;

-- A lead is one inquiry (DESIGN.md "A lead is one inquiry", issue #9).
--
-- Before: the duplicate window keyed on form, email, phone and message, so a second inquiry
-- from the same email about another property was answered with the first lead's id and
-- never saved; an idempotency key reused with another body returned the first visitor's
-- lead. Now submit_lead claims, in leadrelay_private.intake_claims:
--   'fingerprint:<sha256 of the whole normalised payload>' for 10 minutes: only a true replay
--     is the same lead;
--   'key:<form>:<idempotency key>' for 24 hours, remembering the payload's fingerprint: the
--     same key with the same payload is the same lead, with another payload it is refused.
-- A claim is a primary key, so two identical submissions at once meet at the index (the
-- second waits for the first to commit and then finds its lead): no advisory lock.
--
-- A returning person is linked, never merged: leadrelay_private.person_contacts maps each
-- email and each valid phone number to a person id, and every lead carries its person_id
-- and which inquiry of that person it is.

-- The key is no longer unique across leads: it is scoped to its form and expires.
alter table public.conversations drop constraint conversations_idempotency_key_key;

-- The old duplicate window's key and index.
drop index public.conversations_dedup_key_idx;
alter table public.conversations drop column dedup_key;

alter table public.conversations
  -- The phone exactly as the visitor typed it (trimmed). phone holds its E.164 form only when
  -- that is valid for its country (libphonenumber's rules); phone_valid says whether it was.
  add column phone_raw text,
  add column phone_valid boolean,
  add constraint conversations_phone_raw_check check (char_length(phone_raw) <= 64),
  -- The person a lead's email or phone belongs to; leads of one person share it.
  add column person_id uuid,
  -- This lead is the person's nth inquiry, counting itself: overall and in the 24 hours
  -- before it.
  add column person_inquiry integer not null default 1,
  add column person_inquiries_24h integer not null default 1,
  add constraint conversations_person_inquiry_check check (person_inquiry >= 1 and person_inquiries_24h between 1 and person_inquiry);

-- A lead needs a way to reach the person: an email, or a phone (verified or not).
alter table public.conversations drop constraint conversations_contact_check;
alter table public.conversations add constraint conversations_contact_check
  check (email is not null or phone is not null or phone_raw is not null);
-- Earlier leads kept only the normalised number, which was not checked for its country.
update public.conversations set phone_raw = phone where phone is not null;

-- A person's leads, newest first: the returning-lead count and the admin panel's list
-- (GET /rest/v1/conversations?person_id=eq.<id>&order=created_at.desc, under RLS).
create index conversations_person_id_created_at_idx on public.conversations (person_id, created_at desc)
  where person_id is not null;

create table leadrelay_private.intake_claims (
  claim text primary key,
  fingerprint text not null,
  -- No foreign key: the claim is taken before the lead is inserted. A claim whose lead is
  -- gone counts as expired.
  conversation_id uuid not null,
  expires_at timestamptz not null
);
-- Pruning: expired claims go a few hundred at a time (submit_lead, now and then).
create index intake_claims_expires_at_idx on leadrelay_private.intake_claims (expires_at);
revoke all on leadrelay_private.intake_claims from public, anon, authenticated, service_role;

-- The RPC's per-client allowance (anon and authenticated through PostgREST): one row per
-- client address and minute window.
create table leadrelay_private.api_rate_limits (
  client text primary key,
  window_start timestamptz not null,
  requests integer not null
);
revoke all on leadrelay_private.api_rate_limits from public, anon, authenticated, service_role;

create table leadrelay_private.person_contacts (
  -- 'email:<lower-cased email>' or 'phone:<E.164>'
  contact text primary key,
  person_id uuid not null
);
revoke all on leadrelay_private.person_contacts from public, anon, authenticated, service_role;

-- Existing leads: each email is a person; a phone already linked through an email joins
-- that person.
insert into leadrelay_private.person_contacts (contact, person_id)
select 'email:' || lower(email), gen_random_uuid()
  from public.conversations
 where email is not null
 group by lower(email);
insert into leadrelay_private.person_contacts (contact, person_id)
select distinct on (c.phone) 'phone:' || c.phone, coalesce(pc.person_id, gen_random_uuid())
  from public.conversations c
  left join leadrelay_private.person_contacts pc on pc.contact = 'email:' || lower(c.email)
 where c.phone is not null
 order by c.phone, c.created_at
on conflict do nothing;
update public.conversations c
   set person_id = pc.person_id
  from leadrelay_private.person_contacts pc
 where pc.contact = coalesce('email:' || lower(c.email), 'phone:' || c.phone);
update public.conversations c
   set person_inquiry = n.overall, person_inquiries_24h = least(n.recent, n.overall)
  from (
    select id,
           row_number() over (partition by person_id order by created_at, id) as overall,
           count(*) over (partition by person_id order by created_at range between interval '24 hours' preceding and current row) as recent
      from public.conversations
     where person_id is not null
  ) n
 where n.id = c.id and (n.overall > 1);

-- The score functions change their arguments (functions-sql creates the new ones).
drop function if exists public.score_lead(text, text, text, text, text, public.lead_quality);
drop function if exists public.lead_dedup_key(public.lead_form, text, text, text);

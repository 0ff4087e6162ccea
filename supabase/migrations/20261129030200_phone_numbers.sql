-- The number as typed, and a right number or none (issue #9): submit_lead keeps the phone as
-- typed in conversations.phone_raw and stores conversations.phone only when public.parse_phone
-- (libphonenumber's rules, 20261129030100_phone_metadata.sql) finds it valid for its country.
-- public.normalize_phone guessed: '050 123 4567' with country GB became +44501234567.

drop function if exists public.normalize_phone(text, text);

-- The intake's settings. default_phone_region is the country of a number typed without +/00
-- when the lead's metadata.country does not say: TrueNester's visitors are mostly in the UAE.
-- Change it with: update leadrelay_private.intake_settings set default_phone_region = 'GB';
create table leadrelay_private.intake_settings (
  singleton boolean primary key default true check (singleton),
  default_phone_region text not null default 'AE' check (default_phone_region ~ '^[A-Z]{2}$')
);
insert into leadrelay_private.intake_settings default values;
revoke all on leadrelay_private.intake_settings from public, anon, authenticated, service_role;

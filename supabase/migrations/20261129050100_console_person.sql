-- A lead's page lists the same person's other leads by person_id (20261129030000_intake_identity.sql
-- links returning people), so the console's own email and phone indexes are not needed: one
-- less index to write on every lead.
drop index if exists public.conversations_lower_email_idx;
drop index if exists public.conversations_phone_idx;

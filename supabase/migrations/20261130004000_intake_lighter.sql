-- A lighter intake (issue #14): less written per lead.
--
-- conversations_created_at_id_idx (created_at desc, id desc), the console's keyset index,
-- serves every query conversations_created_at_idx (created_at desc) served, so a lead no
-- longer writes an entry into both.
drop index if exists public.conversations_created_at_idx;

-- submit_lead takes both intake claims in one statement now and reads a claim's holder only
-- when the claim is held (public.intake_claim_holder).
drop function if exists public.take_intake_claim(text, text, uuid, timestamptz, timestamptz);

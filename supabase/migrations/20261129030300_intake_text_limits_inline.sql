-- submit_lead reads its text fields' limits inline: a SQL function with SET (every function
-- here fixes its search_path) is planned again on every call, which cost each lead ~0.07 ms.
drop function if exists public.intake_text_limits();

-- Whether a lead is still open: on the SLA clock, with follow-ups to send. A closed or spam
-- lead is not. The triggers ask this function. The SLA scan's queries (70_sla.sql) and their
-- partial indexes (conversations_sla_*_idx, in the migrations) spell the same test as a
-- literal, because the planner matches a partial index only on the literal, and a function
-- that fixes its search_path (as every function here does) is never inlined.
create or replace function public.lead_is_open(status public.conversation_status)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select status not in ('closed', 'spam')
$$;

-- The service's own functions call it; no role calls it directly.
revoke execute on function public.lead_is_open(public.conversation_status) from public, anon, authenticated;

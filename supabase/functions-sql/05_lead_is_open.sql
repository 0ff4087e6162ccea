-- Whether a lead is still open: on the SLA clock, with follow-ups to send. A closed or spam
-- lead is not. The triggers ask this function. The SLA scan's queries (70_sla.sql), the
-- console's SLA filters and the partial indexes (conversations_sla_*_idx, in the migrations)
-- spell the same test as a literal, because the planner matches a partial index only on the
-- literal, and a function that fixes its search_path (as every function here does) is never
-- inlined; supabase/open_lead_test.go checks that every such literal says what this says.
-- plpgsql, not SQL: a SQL function with SET is planned again in every transaction that calls
-- it (0.03 ms of each lead's insert trigger), a plpgsql one once per connection.
create or replace function public.lead_is_open(status public.conversation_status)
returns boolean
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
begin
  return status not in ('closed', 'spam');
end
$$;

-- The service's own functions call it; no role calls it directly.
revoke execute on function public.lead_is_open(public.conversation_status) from public, anon, authenticated;

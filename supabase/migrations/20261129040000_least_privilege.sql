-- Least privilege for the API roles (anon, authenticated): each holds exactly what the admin
-- panel and the website use, nothing that only row-level security would keep closed. Under
-- Supabase's default privileges they held everything in public (an anon key could setval()
-- the chat_messages sequence to its maximum and make every lead with a message fail).
--   anon           executes submit_lead (granted in functions-sql/40_submit_lead.sql); nothing else.
--   authenticated  executes submit_lead; reads the tables and views its policies open to
--                  admins; changes what a person decides: a lead's status, quality and
--                  assignee; a follow-up task's date, deadline, assignee, notes and status
--                  (completing it sets completed_at). Never the pipeline's bookkeeping: scores,
--                  SLA flags and times, delivery state, due_notified_at, overdue_at.
-- supabase/tests/23_least_privilege.sql lists every privilege both roles hold and compares it
-- with this set.

revoke all on all tables in schema public from anon, authenticated;
revoke all on all sequences in schema public from anon, authenticated;
revoke all on all functions in schema public from anon, authenticated;

-- What is created in public from now on is no API role's until a migration grants it. (These
-- undo, for the role that runs the migrations, the grants bootstrap.sql and Supabase make.)
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;

grant select on
  public.sla_policies,
  public.conversations,
  public.chat_messages,
  public.follow_up_tasks,
  public.lead_events,
  public.conversation_timeline,
  public.notification_logs,
  public.notification_routes,
  public.leader_leases,
  public.sla_lead_outcomes,
  public.sla_daily_summary
to authenticated;

grant update (status, quality, assigned_to) on public.conversations to authenticated;
grant insert (conversation_id, follow_up_date, sla_deadline, assigned_to, notes) on public.follow_up_tasks to authenticated;
grant update (status, follow_up_date, sla_deadline, assigned_to, notes) on public.follow_up_tasks to authenticated;

-- Times a person or a visitor gives: finite and in this century, so 'infinity' or 4714 BC
-- cannot stop a follow-up from ever coming due or sort a message before all others.
-- NOT VALID: rows already stored are left alone; every new or changed row is checked.
alter table public.follow_up_tasks
  add constraint follow_up_tasks_follow_up_date_range_check
    check (follow_up_date >= '2000-01-01 00:00:00+00' and follow_up_date < '2100-01-01 00:00:00+00') not valid,
  add constraint follow_up_tasks_sla_deadline_range_check
    check (sla_deadline >= '2000-01-01 00:00:00+00' and sla_deadline < '2100-01-01 00:00:00+00') not valid;
alter table public.chat_messages
  add constraint chat_messages_sent_at_range_check
    check (sent_at >= '2000-01-01 00:00:00+00' and sent_at < '2100-01-01 00:00:00+00') not valid;

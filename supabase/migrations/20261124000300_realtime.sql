-- The tables the admin panel watches through Supabase Realtime. Realtime applies the same
-- row-level security, so only admins receive these changes.
alter publication supabase_realtime add table
  public.conversations,
  public.chat_messages,
  public.lead_events,
  public.conversation_timeline,
  public.follow_up_tasks,
  public.notification_logs;

-- The panel compares old and new rows of these tables' updates (a status, an SLA flag, a
-- delivery outcome); without a full replica identity an update event carries only the new row.
alter table public.conversations replica identity full;
alter table public.follow_up_tasks replica identity full;
alter table public.notification_logs replica identity full;
alter table public.lead_events replica identity full;

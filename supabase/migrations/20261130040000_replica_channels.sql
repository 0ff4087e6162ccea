-- The channels of the delivering replicas. Each replica's dispatcher keeps its row fresh
-- (public.announce_replica, every sixth of public.replica_window()), so that a replica opens
-- a new event, and a give-up's fallbacks, for the channels of every replica seen within the
-- window, not only its own: when replicas are configured differently (one deployed without
-- its Telegram secret, a rolling deploy that adds a channel), a lead still gets a delivery on
-- every routed channel some live replica can send, and that replica claims it. A few rows:
-- one per replica process, pruned a window after it was last seen.
create table leadrelay_private.replica_channels (
  replica text primary key,
  channels public.notification_channel[] not null,
  seen_at timestamptz not null,
  constraint replica_channels_replica_check check (length(replica) between 1 and 200)
);

revoke all on leadrelay_private.replica_channels from public, anon, authenticated, service_role;

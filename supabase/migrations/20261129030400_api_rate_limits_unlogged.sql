-- The RPC's per-client counts are worth nothing after a crash (a minute later they are reset
-- anyway), so they write no WAL: one row update per API call, on every call through PostgREST.
-- (The intake claims stay logged: a replay or a reused key after a crash must still be known.)
alter table leadrelay_private.api_rate_limits set unlogged;

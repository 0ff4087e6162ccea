-- A Supabase admin's console session is renewed with Supabase Auth's refresh-token grant when
-- its access token expires or is about to, so an admin is not signed out every hour while the
-- refresh token is good. The refresh token is kept sealed (AES-256-GCM) under a key derived
-- from the session's cookie token, which only the browser holds (this table keeps the token's
-- SHA-256): a reader of this table still can neither sign in nor renew a session.
-- access_expires_at is when the session's access token expires (null: a session of the admin
-- key, which has none); expires_at stays the session's end.
alter table leadrelay_private.console_sessions
  add column access_expires_at timestamptz,
  add column refresh_token bytea,
  add constraint console_sessions_refresh_check check ((refresh_token is null) = (access_expires_at is null));

-- Plain Postgres looks like Supabase (DESIGN.md): the roles, the auth helpers, the extensions
-- schema, the realtime publication and the default privileges that Supabase provides and that
-- the migrations rely on. Every statement creates only what is missing, so running this file
-- twice, or on Supabase itself, changes nothing. The migrator runs it where auth.jwt() is missing.
--
-- Run it as the role that will run the migrations: the default privileges at the end apply to
-- objects that role creates.

-- Roles are cluster-wide, so two databases of one cluster may bootstrap at the same moment:
-- the loser of that race sees duplicate_object (or unique_violation from the catalog index).
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
exception when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
exception when duplicate_object or unique_violation then null;
end
$$;

do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
exception when duplicate_object or unique_violation then null;
end
$$;

-- PostgREST logs in as authenticator and switches to the role named by the JWT.
do $$
begin
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
exception when duplicate_object or unique_violation then null;
end
$$;

do $$
declare
  api_role text;
begin
  foreach api_role in array array['anon', 'authenticated', 'service_role'] loop
    if not pg_catalog.pg_has_role('authenticator', api_role, 'member') then
      begin
        execute format('grant %I to authenticator', api_role);
      exception when unique_violation then null;  -- granted by a concurrent bootstrap
      end;
    end if;
  end loop;
end
$$;

create schema if not exists auth;
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;

-- The claims PostgREST puts in request.jwt.claims; request.jwt.claim is the pre-v10 spelling.
do $$
begin
  if pg_catalog.to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb
    language sql stable
    set search_path = ''
    as $fn$
      select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claims', true), ''),
        nullif(pg_catalog.current_setting('request.jwt.claim', true), '')
      )::jsonb
    $fn$;
  end if;

  if pg_catalog.to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid
    language sql stable
    set search_path = ''
    as $fn$
      select nullif(auth.jwt() ->> 'sub', '')::uuid
    $fn$;
  end if;

  if pg_catalog.to_regprocedure('auth.role()') is null then
    create function auth.role() returns text
    language sql stable
    set search_path = ''
    as $fn$
      select nullif(auth.jwt() ->> 'role', '')
    $fn$;
  end if;
end
$$;

do $$
begin
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end
$$;

grant usage on schema public, auth, extensions to anon, authenticated, service_role;

-- As on Supabase, the API roles hold privileges on everything created in public: row-level
-- security, not grants, is what keeps them out, and the tests prove it under these defaults.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

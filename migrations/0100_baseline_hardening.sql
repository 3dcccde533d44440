-- The mail database is locked down before anything is put in it: PUBLIC may neither
-- connect, nor create temporary tables, nor look into schema public; each role that
-- logs in is granted CONNECT and USAGE by name. The roles are cluster-wide and come
-- from `mailbook init` (sql/roles.sql): mailadmin (help desk, provisioning through the
-- API), mailreader (Postfix's lookups), mailauth (Dovecot's passdb/userdb and Sieve
-- dict), mailwebmail (a webmail's password changes), mailquota (Dovecot's quota_clone).
-- This file is the 1.0 baseline's first step; migrations/pre-1.0/ holds the history
-- that led here, used only to bring an older database to its end.

DO $check$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(r, ', ') INTO missing
      FROM unnest(ARRAY['mailowner', 'mailadmin', 'mailreader', 'mailauth', 'mailwebmail', 'mailquota']) AS r
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'role(s) % do not exist', missing
              USING ERRCODE = '42704',
                    HINT = 'run `mailbook init` as a superuser first; it creates the roles (and changes nothing else)';
    END IF;
END
$check$;

DO $db$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailadmin, mailreader, mailauth, mailwebmail, mailquota',
                   current_database());
END
$db$;

-- PG 15 already withholds CREATE on public; PG 13/14 still grant it. USAGE goes too.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO mailadmin, mailreader, mailauth, mailwebmail, mailquota;

-- Objects mailowner creates from now on are private until granted. The IN SCHEMA form
-- cannot revoke PUBLIC's default EXECUTE on functions; only the global form does.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES REVOKE USAGE ON TYPES FROM PUBLIC;

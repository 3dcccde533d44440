-- Lock the mail database down before anything is put in it: PUBLIC may neither connect,
-- nor create temporary tables, nor see into schema public; each role that must log in is
-- granted CONNECT by name. This is the tutorial's REVOKE/GRANT hardening done for this
-- database only (the tutorial's grants to "postgres" were redundant: it is a superuser).

DO $check$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(r, ', ') INTO missing
      FROM unnest(ARRAY['mailowner', 'mailadmin', 'mailreader', 'mailauth']) AS r
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'role(s) % do not exist', missing
              USING ERRCODE = '42704',
                    HINT = 'run `mailbook init` as a superuser first; it creates the roles';
    END IF;
END
$check$;

DO $db$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailadmin, mailreader, mailauth',
                   current_database());
END
$db$;

-- PG 15 already withholds CREATE on public; PG 13/14 still grant it. USAGE goes too,
-- so a role we did not name cannot even reach pgcrypto's functions.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO mailadmin, mailreader, mailauth;

-- Objects mailowner creates from now on are private until granted. The IN SCHEMA form
-- cannot revoke PUBLIC's default EXECUTE on functions; only the global form does.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES REVOKE USAGE ON TYPES FROM PUBLIC;

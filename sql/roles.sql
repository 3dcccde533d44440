-- The five cluster roles mailbook relies on. Roles belong to the whole cluster, not to the
-- mail database, so they are created here (by `mailbook init`, as a superuser) rather than
-- in a migration that a rollback could undo under another database's feet.
-- Idempotent: an existing role is left exactly as it is. No passwords here, ever: the
-- service roles get theirs from the DBA (`\password mailreader` in psql, or
-- `mailbook role password`), so no secret sits in a file under version control.
DO $roles$
DECLARE
    wanted constant text[][] := ARRAY[
        -- name          login?   what it is for
        ['mailowner',  'false'],  -- owns every object; migrations run as it
        ['mailadmin',  'false'],  -- provisioning: EXECUTE on the functions, SELECT on all but hashes
        ['mailreader', 'true' ],  -- Postfix map lookups
        ['mailauth',   'true' ],  -- Dovecot passdb/userdb lookups, and the vacation scripts Sieve reads
        ['mailquota',  'true' ]   -- Dovecot's quota_clone: writes each mailbox's usage, nothing else
    ];
    r text[];
BEGIN
    FOREACH r SLICE 1 IN ARRAY wanted LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r[1]) THEN
            EXECUTE format('CREATE ROLE %I %s', r[1],
                           CASE WHEN r[2]::boolean THEN 'LOGIN' ELSE 'NOLOGIN' END);
            RAISE NOTICE 'created role %', r[1];
        END IF;
    END LOOP;
END
$roles$;

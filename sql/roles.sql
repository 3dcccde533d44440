-- The cluster roles mailbook relies on. Roles belong to the whole cluster, not to the
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
        ['maildomainadmin', 'false'],  -- a customer's admin: the scope-checked functions only (0207)
        ['mailreader', 'true' ],  -- Postfix map lookups
        ['mailauth',   'true' ],  -- Dovecot passdb/userdb lookups, and the vacation scripts Sieve reads
        ['mailquota',  'true' ],  -- Dovecot's quota_clone: writes each mailbox's usage, nothing else
        ['mailwebmail', 'true'],  -- a webmail's password form: EXECUTE change_password() only
        ['maildkim',   'true' ]   -- OpenDKIM: reads the active DKIM keys (view dkim_signing), nothing else
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

-- mailwebmail sends passwords inside the statement's text: Roundcube's SQL driver writes
-- them into the query as literals, it never binds them. Keep that text out of the server
-- log whatever the server logs for others, and out of pg_stat_activity, where every
-- session of the same role (a thief holding the webmail's password, say) could read
-- another's change in flight. Superuser-only parameters: set here by `mailbook init`.
-- What each role is for, where psql's \du+ shows it.
COMMENT ON ROLE mailowner IS 'mailbook: owns every object of the mail database; migrations run as it. No login.';
COMMENT ON ROLE mailadmin IS 'mailbook: provisioning (the help desk): EXECUTE on the SQL API, SELECT on all but password hashes. Grant it to people.';
COMMENT ON ROLE maildomainadmin IS 'mailbook: a customer''s admin: EXECUTE on the scope-checked functions only, for the domains admin_scopes lists (mailbook admin add). Grant it to logins that are not in mailadmin.';
COMMENT ON ROLE mailreader IS 'mailbook: Postfix''s map lookups (postfix-maps/*.cf); reads, writes nothing.';
COMMENT ON ROLE mailauth IS 'mailbook: Dovecot''s passdb/userdb lookups and the vacation scripts Sieve reads; reads, writes nothing.';
COMMENT ON ROLE mailquota IS 'mailbook: Dovecot''s quota_clone; writes each mailbox''s usage row and nothing else.';
COMMENT ON ROLE maildkim IS 'mailbook: OpenDKIM''s KeyTable/SigningTable lookups; reads the active DKIM private keys (dkim_signing) and nothing else.';
COMMENT ON ROLE mailwebmail IS 'mailbook: a webmail''s password form; may only call change_password().';

-- Every knob that can put a statement's text or its parameters into the server log or a
-- view, pinned: a DBA tuning the server (log_min_duration_sample = 0, say) must not log
-- the webmail's passwords. `mailbook doctor` checks each one (sql/doctor.sql, the same list).
ALTER ROLE mailwebmail SET log_statement = 'none';
ALTER ROLE mailwebmail SET log_min_duration_statement = -1;
ALTER ROLE mailwebmail SET log_min_duration_sample = -1;
ALTER ROLE mailwebmail SET log_statement_sample_rate = 0;
ALTER ROLE mailwebmail SET log_transaction_sample_rate = 0;
ALTER ROLE mailwebmail SET log_min_error_statement = 'panic';
ALTER ROLE mailwebmail SET log_parameter_max_length = 0;
ALTER ROLE mailwebmail SET log_parameter_max_length_on_error = 0;
ALTER ROLE mailwebmail SET log_duration = off;
ALTER ROLE mailwebmail SET debug_print_parse = off;
ALTER ROLE mailwebmail SET debug_print_rewritten = off;
ALTER ROLE mailwebmail SET debug_print_plan = off;
ALTER ROLE mailwebmail SET track_activities = off;
ALTER ROLE mailwebmail SET auto_explain.log_min_duration = -1;
ALTER ROLE mailwebmail SET pg_stat_statements.track = 'none';

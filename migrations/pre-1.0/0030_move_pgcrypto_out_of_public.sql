-- pgcrypto moves from schema public into schema crypto, which only mailowner may use.
-- In public, its functions were callable by every role that reads the tables (Postfix's
-- mailreader, Dovecot's mailauth, the help-desk's mailadmin): nothing the roles need, and
-- crypt() with gen_salt('bf', 31) is a CPU sink anyone could start. Hiding the functions
-- in a schema nobody else may use is enough: no function can be called without looking
-- its name up. Revoking their EXECUTE is not possible for mailowner: pgcrypto is a
-- trusted extension, so even when mailowner created it, its functions belong to the
-- bootstrap superuser.
-- How it moves: run by a superuser (`mailbook migrate apply` as postgres), ALTER
-- EXTENSION ... SET SCHEMA with the session user's rights, whoever created pgcrypto (the
-- tutorial has the superuser create it); otherwise, if mailowner owns the extension,
-- DROP and CREATE it again in crypto (nothing in the schema depends on it: the API calls
-- it by name, and is re-created after the migrations); otherwise the migration stops
-- and says what a superuser must run.
-- depends: 0029_neutralise_stored_text

CREATE SCHEMA IF NOT EXISTS crypto AUTHORIZATION mailowner;
REVOKE ALL ON SCHEMA crypto FROM PUBLIC;
COMMENT ON SCHEMA crypto IS 'pgcrypto, for the SQL API only: nobody but mailowner may use this schema';

DO $move$
DECLARE
    owner regrole := (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname = 'pgcrypto');
BEGIN
    IF (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'pgcrypto') = 'crypto'::regnamespace THEN
        RETURN;  -- moved by a superuser already
    END IF;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        EXECUTE 'RESET ROLE';
        ALTER EXTENSION pgcrypto SET SCHEMA crypto;
        EXECUTE 'SET ROLE mailowner';
    ELSIF owner = 'mailowner'::regrole THEN
        DROP EXTENSION pgcrypto;
        CREATE EXTENSION pgcrypto WITH SCHEMA crypto;
    ELSE
        RAISE EXCEPTION 'pgcrypto belongs to %, so mailowner cannot move it into schema crypto', owner
              USING ERRCODE = '42501',
                    HINT = 'run mailbook migrate apply as a superuser, or as one in this database: CREATE SCHEMA '
                           'IF NOT EXISTS crypto AUTHORIZATION mailowner; ALTER EXTENSION pgcrypto SET SCHEMA crypto';
    END IF;
END
$move$;

-- pgcrypto moves from schema public into schema crypto, which only mailowner may use.
-- In public, its functions were callable by every role that reads the tables (Postfix's
-- mailreader, Dovecot's mailauth, the help-desk's mailadmin): nothing the roles need, and
-- crypt() with gen_salt('bf', 31) is a CPU sink anyone could start. pgcrypto is a trusted
-- extension: mailowner owns the extension, but the bootstrap superuser owns its functions,
-- so mailowner can neither revoke their EXECUTE from PUBLIC nor ALTER EXTENSION ... SET
-- SCHEMA. It can drop the extension and create it again in a schema without USAGE for
-- anyone else, which hides the functions: no function can be called without looking its
-- name up. Nothing in the schema depends on pgcrypto (the API calls it by name, from
-- SECURITY DEFINER functions that run as mailowner, and is re-created after this).
-- A pgcrypto that a superuser created, or that the DBA's own objects use, is not
-- touched: the migration stops and says what to run as a superuser.
-- depends: 0028_private_import_staging

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
    IF owner <> 'mailowner'::regrole THEN
        RAISE EXCEPTION 'pgcrypto belongs to %, so mailowner cannot move it into schema crypto', owner
              USING ERRCODE = '42501',
                    HINT = 'as a superuser in this database: CREATE SCHEMA IF NOT EXISTS crypto AUTHORIZATION '
                           'mailowner; ALTER EXTENSION pgcrypto SET SCHEMA crypto; then apply again';
    END IF;
    DROP EXTENSION pgcrypto;
    CREATE EXTENSION pgcrypto WITH SCHEMA crypto;
END
$move$;

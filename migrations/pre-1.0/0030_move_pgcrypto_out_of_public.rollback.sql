-- Undo 0030: pgcrypto back in schema public, where the API before 0030 calls it; moved
-- the way 0030 moved it.
DO $move$
BEGIN
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        EXECUTE 'RESET ROLE';
        ALTER EXTENSION pgcrypto SET SCHEMA public;
        EXECUTE 'SET ROLE mailowner';
    ELSE
        DROP EXTENSION pgcrypto;
        CREATE EXTENSION pgcrypto WITH SCHEMA public;
    END IF;
END
$move$;
DROP SCHEMA crypto;

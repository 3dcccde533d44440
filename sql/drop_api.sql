-- Drops the SQL API before it is re-created from sql/api/ (on every `migrate apply`) or
-- before migrations are rolled back. The API is, by rule, every SECURITY DEFINER
-- function that mailowner owns in schema public; the validation helpers that CHECK
-- constraints use are SECURITY INVOKER, live in migrations and are left alone.
-- Because nothing in a migration may depend on an API function, these drops never cascade.
DO $drop$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace
           AND p.prosecdef
           AND p.proowner = 'mailowner'::regrole
    LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END
$drop$;

-- Undo 0207_add_admin_scopes: the table of scoped admins. Refused while it holds a scope
-- (rolling back would silently turn every scoped admin into one that manages nothing).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.admin_scopes) THEN
        RAISE EXCEPTION 'domain admin scopes exist: revoke them first (mailbook admin remove NAME)'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TABLE public.admin_scopes;
REVOKE USAGE ON SCHEMA public FROM maildomainadmin;
DO $db$
BEGIN
    -- granted by sql/api/90_privileges.sql once the table exists
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM maildomainadmin', current_database());
END
$db$;

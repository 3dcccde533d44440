-- Undo 0209_add_dkim_keys: the DKIM key table, the signer's view and the staging table.
-- Refused while a key exists (rolling back would silently drop every domain's signing
-- key, and mail would leave unsigned).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.dkim_keys) THEN
        RAISE EXCEPTION 'DKIM keys exist: delete them first, as mailowner (DELETE FROM dkim_keys), if they are to be lost'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP VIEW public.dkim_signing;
DROP TABLE public.dkim_key_staging;
DROP TABLE public.dkim_keys;
REVOKE USAGE ON SCHEMA public FROM maildkim;
DO $db$
BEGIN
    -- granted by sql/api/90_privileges.sql once the table exists
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM maildkim', current_database());
END
$db$;

-- Undo 0212_add_app_passwords: the app password table and the site setting. Refused while
-- an app password exists (rolling back would silently lock out every device using one).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.app_passwords) THEN
        RAISE EXCEPTION 'app passwords exist: revoke them first, or delete them as mailowner (DELETE FROM app_passwords), if they are to be lost'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TABLE public.app_passwords;
DROP FUNCTION public.app_passwords_auth_cache_changes();
ALTER TABLE public.settings DROP COLUMN app_password_services;

-- Undo 0215_add_password_expiry: password ages and their settings. Refused while a
-- maximum age is set (rolling back would silently let expired passwords log in again).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.users WHERE password_max_age IS NOT NULL)
       OR EXISTS (SELECT FROM public.transports WHERE password_max_age IS NOT NULL) THEN
        RAISE EXCEPTION 'password ages are set: clear them first (mailbook mailbox|domain password-age clear), if passwords are to stop expiring'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TRIGGER transports_password_max_age_auth_cache_changes ON public.transports;
DROP TRIGGER users_password_max_age_auth_cache_changes ON public.users;
DROP FUNCTION public.password_max_age_auth_cache_changes();
DROP TRIGGER users_password_changed ON public.users;
DROP FUNCTION public.users_password_changed();
ALTER TABLE public.settings
    DROP COLUMN password_expiry_reason,
    DROP COLUMN password_expiry_exempt_networks,
    DROP COLUMN password_expiry_services;
ALTER TABLE public.transports DROP COLUMN password_max_age;
ALTER TABLE public.users DROP COLUMN password_max_age, DROP COLUMN password_changed;

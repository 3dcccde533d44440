-- Undo 0213_add_login_networks: the login networks of mailboxes and domains. Refused
-- while one is set (rolling back would silently let those mailboxes log in from anywhere).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.users WHERE login_networks IS NOT NULL)
       OR EXISTS (SELECT FROM public.transports WHERE login_networks IS NOT NULL) THEN
        RAISE EXCEPTION 'login networks are set: clear them first (mailbook mailbox|domain networks clear), if logins from anywhere are to be allowed again'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TRIGGER transports_login_networks_auth_cache_changes ON public.transports;
DROP TRIGGER users_login_networks_auth_cache_changes ON public.users;
DROP FUNCTION public.login_networks_auth_cache_changes();
ALTER TABLE public.transports DROP COLUMN login_networks;
ALTER TABLE public.users DROP COLUMN login_networks;

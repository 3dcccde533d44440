-- Undo 0019. Refused while a service is turned off anywhere: rolling back would let
-- those mailboxes in again without anyone deciding so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.users WHERE disabled_services <> '{}')
       OR EXISTS (SELECT FROM public.transports WHERE disabled_services <> '{}') THEN
        RAISE EXCEPTION 'services are turned off for some mailboxes or domains; turn them on (`mailbook mailbox allow`, `mailbook domain allow`) before rolling back 0019'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP VIEW public.mailboxes;
CREATE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified
  FROM public.users;
ALTER TABLE public.users DROP COLUMN disabled_services;
ALTER TABLE public.transports DROP COLUMN disabled_services;
DROP FUNCTION public.service_list_error(text[]);

-- Undo 0020. Refused while a domain has a cap or a mailbox a message quota: rolling
-- back would lift them without anyone deciding so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.transports
                WHERE max_mailboxes IS NOT NULL OR max_aliases IS NOT NULL OR max_quota_bytes IS NOT NULL)
       OR EXISTS (SELECT FROM public.users WHERE quota_messages IS NOT NULL) THEN
        RAISE EXCEPTION 'domain caps or message quotas are set; clear them (set_domain_limits, set_mailbox_quota) before rolling back 0020'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP TRIGGER domain_limits_on_insert ON public.users;
DROP TRIGGER domain_limits_on_update ON public.users;
DROP TRIGGER domain_limits_on_insert ON public.aliases;
DROP TRIGGER domain_limits_on_update ON public.aliases;
DROP FUNCTION public.refuse_over_domain_limits();
DROP VIEW public.mailboxes;
CREATE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified, disabled_services
  FROM public.users;
ALTER TABLE public.users DROP COLUMN quota_messages;
ALTER TABLE public.transports DROP COLUMN max_mailboxes, DROP COLUMN max_aliases, DROP COLUMN max_quota_bytes;

-- Undo 0106_baseline_mailboxes. Refused while mailboxes exist: rolling back would drop
-- them (and their hashes) without anyone deciding so. quota_usage holds only Dovecot's
-- counts, which Dovecot writes again.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.users) THEN
        RAISE EXCEPTION 'mailboxes exist; remove them (remove_mailbox) before rolling back 0106_baseline_mailboxes'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP VIEW public.mailboxes;
DROP TABLE public.quota_usage;
DROP FUNCTION public.quota_usage_measured();
DROP VIEW public.nested_maildirs;
DROP TABLE public.users;
DROP TABLE public.maildir_roots;
DROP FUNCTION public.refuse_nested_maildirs();
DROP FUNCTION public.maildirs_around(text);
DROP FUNCTION public.maildir_parents(text);

-- Undo 0210_add_last_login: the mailboxes view as 0106 made it (a view cannot lose a
-- column in place), then the table and its trigger. The recorded logins are lost; Dovecot
-- records new ones once the migration is applied again.
DROP VIEW public.mailboxes;
CREATE VIEW public.mailboxes AS
SELECT u.email, u.domain, u.realname, u.maildir, u.quota_bytes, u.active, u.created, u.modified,
       u.disabled_services, u.quota_messages, q.bytes AS used_bytes, q.messages AS used_messages
  FROM public.users u LEFT JOIN public.quota_usage q ON q.email = u.email;
COMMENT ON VIEW public.mailboxes IS
'Every mailbox without its password hash, with Dovecot''s usage: what mailadmin reads (SELECT * FROM mailboxes).';
COMMENT ON COLUMN public.mailboxes.used_bytes IS 'Bytes stored, as Dovecot last wrote (NULL before its first write).';
COMMENT ON COLUMN public.mailboxes.used_messages IS 'Messages stored, as Dovecot last wrote.';
GRANT SELECT ON public.mailboxes TO mailadmin;
DROP TABLE public.last_logins;
DROP FUNCTION public.last_logins_written();

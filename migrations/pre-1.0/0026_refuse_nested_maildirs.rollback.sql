-- Undo 0026: maildirs may nest again, and compare in the database's collation. The API
-- is dropped before any rollback, so the mailboxes view has no dependants here.
DROP VIEW public.nested_maildirs;
DROP TRIGGER users_maildirs_apart ON public.users;
DROP TRIGGER users_maildirs_apart_on_update ON public.users;
DROP FUNCTION public.refuse_nested_maildirs();
DROP TABLE public.maildir_roots;
DROP FUNCTION public.maildirs_around(text);
DROP FUNCTION public.maildir_parents(text);
DROP VIEW public.mailboxes;
ALTER TABLE public.users ALTER COLUMN maildir TYPE text COLLATE "default";
CREATE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified, disabled_services, quota_messages
  FROM public.users;

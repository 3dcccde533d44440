-- Undo 0060. The rows are Dovecot's counts, written again on each mailbox's next change,
-- so nothing is lost that Dovecot does not still know.
-- the SQL API (which returns mailboxes rows) is dropped before any rollback
DROP VIEW public.mailboxes;
CREATE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified, disabled_services, quota_messages
  FROM public.users;
DROP TABLE public.quota_usage;
DROP FUNCTION public.quota_usage_measured();
REVOKE USAGE ON SCHEMA public FROM mailquota;
DO $db$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM mailquota', current_database());
END
$db$;

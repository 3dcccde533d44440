-- The maildir purge queue (0021): what `mailbook maildirs purge` reads and clears. The
-- files themselves are the runner's job (it runs as root on the mail host); these
-- functions decide, under a lock, whether a path may go.
--
-- A customer's admin (maildomainadmin, 35_scopes.sql) may list the queue entries of its
-- own domains' removed mailboxes (queued_maildirs()), to see what its removals left on
-- disk, and nothing more. Claiming and forgetting stay mailadmin's: the queue is the
-- provider's disk hygiene, worked by root's cron on the mail host (`maildirs purge`
-- claims a path in the transaction that deletes it, a claim without the deletion would
-- leave a directory nobody tracks), and a customer that forgot an entry would leave its
-- mail on the provider's disk for ever; keeping a maildir (forget) is the provider's
-- call too. maildir_in_use() stays granted to nobody.

-- maildir_in_use(maildir) -> text
-- Why a path must stay, or NULL: a mailbox has that maildir again, a mailbox's maildir
-- lies inside it, or it lies inside a mailbox's maildir (such a row predates 0026, or
-- was added after the removal); or the same of a mailbox removed with a grace period
-- (0214), which may yet be restored. Deleting it would destroy live mail.
-- Caller: queued_maildirs() and claim_maildir() only (granted to nobody).
CREATE FUNCTION public.maildir_in_use(maildir text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reason text;
BEGIN
    SELECT CASE WHEN u.maildir = maildir_in_use.maildir THEN 'a mailbox uses it again'
                WHEN u.maildir > maildir_in_use.maildir
                    THEN format('the maildir %s of %s lies inside it', public.quoted(u.maildir), public.quoted(u.email))
                ELSE format('it lies inside the maildir %s of %s', public.quoted(u.maildir), public.quoted(u.email)) END
      INTO reason
      FROM (SELECT s.maildir, s.email FROM public.users s WHERE s.maildir = maildir_in_use.maildir
            UNION ALL
            SELECT a.maildir, a.email FROM public.maildirs_around(maildir_in_use.maildir) a) u
     ORDER BY u.maildir = maildir_in_use.maildir DESC, u.maildir
     LIMIT 1;
    IF reason IS NULL AND to_regclass('public.removed_mailboxes') IS NOT NULL THEN
        SELECT format('the removed mailbox %s, restorable until %s, keeps the maildir %s',
                      public.quoted(r.email), to_char(r.purge_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                      public.quoted(r.maildir))
          INTO reason
          FROM public.removed_maildirs_around(maildir_in_use.maildir) r
         LIMIT 1;
    END IF;
    RETURN reason;
END
$$;
REVOKE ALL ON FUNCTION public.maildir_in_use(text) FROM PUBLIC;

-- queued_maildirs() -> table(maildir, email, queued, in_use, reason)
-- Caller: members of mailadmin (runner: `mailbook maildirs purge`, `--dry-run`,
-- `maildirs list`), and of maildomainadmin: the entries of removed mailboxes in its
-- domains only (by the removed address's domain; a removed domain's are no longer its).
-- in_use: the path, or a path above or below it, is a mailbox's maildir (reason says
-- which); such a path is never purged. A customer's admin gets a reason without names:
-- the mailbox in the way may be another customer's.
CREATE FUNCTION public.queued_maildirs()
RETURNS TABLE (maildir text, email text, queued timestamptz, in_use boolean, reason text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT q.maildir, q.email, q.queued, r.reason IS NOT NULL,
       CASE WHEN s.scoped AND r.reason IS NOT NULL THEN 'a mailbox''s maildir is at, above or below it' ELSE r.reason END
  FROM (SELECT public.is_scoped_admin() AS scoped) s,
       public.maildir_purge_queue q, LATERAL (SELECT public.maildir_in_use(q.maildir) AS reason) r
 WHERE NOT s.scoped OR split_part(q.email, '@', 2) IN (SELECT public.managed_domains())
 ORDER BY q.queued, q.maildir
$$;
REVOKE ALL ON FUNCTION public.queued_maildirs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.queued_maildirs() TO mailadmin, maildomainadmin;

-- claim_maildir(maildir) -> boolean
-- Caller: the runner (members of mailadmin; not a customer's admin, see above), in the
-- transaction that deletes the directory: drops the queue
-- entry and returns true if the path may be deleted now; false (entry kept) while a
-- mailbox uses it. The entry stays locked until the runner commits, so a mailbox added
-- meanwhile with that path waits, and then starts with an empty directory rather than
-- a half-deleted one; if the runner fails to delete, it rolls back and the entry stays.
-- It also takes the lock row of the path's first segment (0026), so a mailbox added
-- meanwhile with a maildir above or below the path waits too. False while the path,
-- or one above or below it, is a mailbox's maildir (maildir_in_use()).
-- Raises P0002 if the path is not queued.
CREATE FUNCTION public.claim_maildir(maildir text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM FROM public.maildir_purge_queue q WHERE q.maildir = claim_maildir.maildir FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'maildir % is not queued for purging', public.quoted(claim_maildir.maildir)
              USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO public.maildir_roots AS r (root) VALUES (split_part(claim_maildir.maildir, '/', 1))
    ON CONFLICT (root) DO UPDATE SET root = excluded.root;
    IF public.maildir_in_use(claim_maildir.maildir) IS NOT NULL THEN
        RETURN false;
    END IF;
    DELETE FROM public.maildir_purge_queue q WHERE q.maildir = claim_maildir.maildir;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.claim_maildir(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.claim_maildir(text) TO mailadmin;

-- forget_maildir(maildir) -> void
-- Caller: members of mailadmin, not a customer's admin (see above) (runner: `mailbook
-- maildirs forget`): drop a queue entry
-- without deleting anything, e.g. when the directory is to be kept or archived.
-- Raises P0002 if the path is not queued.
CREATE FUNCTION public.forget_maildir(maildir text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM public.maildir_purge_queue q WHERE q.maildir = forget_maildir.maildir;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'maildir % is not queued for purging', public.quoted(forget_maildir.maildir)
              USING ERRCODE = 'P0002';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.forget_maildir(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.forget_maildir(text) TO mailadmin;

-- expire_removed_mailboxes() -> table(email, maildir, removed, purge_after)
-- Caller: members of mailadmin, not a customer's admin (the purge queue is the provider's,
-- see above) (runner: `mailbook maildirs purge`, before it reads the queue, so the purge's
-- one cron line covers it; `mailbook mailbox expire`). Every mailbox removed with a grace
-- period (0214) whose window has ended leaves removed_mailboxes, and its maildir joins
-- the purge queue, as an immediate removal's does. Returns what it moved. Raises nothing.
CREATE FUNCTION public.expire_removed_mailboxes()
RETURNS TABLE (email text, maildir text, removed timestamptz, purge_after timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        WITH gone AS (
            DELETE FROM public.removed_mailboxes r WHERE r.purge_after <= now()
            RETURNING r.email, r.maildir, r.removed, r.purge_after),
        queued AS (
            INSERT INTO public.maildir_purge_queue AS q (maildir, email)
            SELECT g.maildir, g.email FROM gone g
            ON CONFLICT ON CONSTRAINT maildir_purge_queue_pkey DO UPDATE SET email = excluded.email)
        SELECT g.email, g.maildir, g.removed, g.purge_after FROM gone g ORDER BY g.purge_after, g.email;
END
$$;
REVOKE ALL ON FUNCTION public.expire_removed_mailboxes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.expire_removed_mailboxes() TO mailadmin;

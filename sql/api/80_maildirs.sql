-- The maildir purge queue (0021): what `mailbook maildirs purge` reads and clears. The
-- files themselves are the runner's job (it runs as root on the mail host); these
-- functions decide, under a lock, whether a path may go.

-- queued_maildirs() -> table(maildir, email, queued, in_use)
-- Caller: members of mailadmin (runner: `mailbook maildirs purge`, `--dry-run`).
-- in_use: a mailbox has that maildir again; such a path is never purged.
CREATE FUNCTION public.queued_maildirs()
RETURNS TABLE (maildir text, email text, queued timestamptz, in_use boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT q.maildir, q.email, q.queued, EXISTS (SELECT FROM public.users u WHERE u.maildir = q.maildir)
  FROM public.maildir_purge_queue q
 ORDER BY q.queued, q.maildir
$$;
REVOKE ALL ON FUNCTION public.queued_maildirs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.queued_maildirs() TO mailadmin;

-- claim_maildir(maildir) -> boolean
-- Caller: the runner, in the transaction that deletes the directory: drops the queue
-- entry and returns true if the path may be deleted now; false (entry kept) while a
-- mailbox uses it. The entry stays locked until the runner commits, so a mailbox added
-- meanwhile with that path waits, and then starts with an empty directory rather than
-- a half-deleted one; if the runner fails to delete, it rolls back and the entry stays.
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
    IF EXISTS (SELECT FROM public.users u WHERE u.maildir = claim_maildir.maildir) THEN
        RETURN false;
    END IF;
    DELETE FROM public.maildir_purge_queue q WHERE q.maildir = claim_maildir.maildir;
    RETURN true;
END
$$;
REVOKE ALL ON FUNCTION public.claim_maildir(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.claim_maildir(text) TO mailadmin;

-- forget_maildir(maildir) -> void
-- Caller: members of mailadmin (runner: `mailbook maildirs forget`): drop a queue entry
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

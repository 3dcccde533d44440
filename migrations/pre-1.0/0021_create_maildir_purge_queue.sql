-- maildir_purge_queue: the maildirs of removed mailboxes, waiting for `mailbook maildirs
-- purge` to delete them from disk. Removing a mailbox in SQL cannot touch files (and
-- must not: the database server has no business in the mail store), so the removal
-- queues the path, in the same transaction, whichever way the row went (API, cascade
-- from remove_domain, or the owner's DML). A mailbox added again with a queued path
-- takes it back (its entry is dropped, the mail is kept); the purge deletes a
-- directory only if no mailbox uses that path by then.
-- depends: 0020_quota_and_limits

CREATE TABLE public.maildir_purge_queue (
    maildir  text PRIMARY KEY
             CONSTRAINT maildir_purge_queue_maildir_valid CHECK (public.maildir_error(maildir) IS NULL),
    -- the mailbox that last had it, for the listing
    email    text NOT NULL,
    queued   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.maildir_purge_queue IS
    'Maildirs of removed mailboxes, to be deleted from disk by `mailbook maildirs purge`';

-- queue_removed_maildirs(): AFTER DELETE ... FOR EACH STATEMENT on users, once per
-- statement over its removed rows. A path queued twice keeps its first entry's time.
CREATE FUNCTION public.queue_removed_maildirs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.maildir_purge_queue (maildir, email)
    SELECT DISTINCT ON (o.maildir) o.maildir, o.email FROM old_rows o ORDER BY o.maildir, o.email
    ON CONFLICT (maildir) DO UPDATE SET email = excluded.email;
    RETURN NULL;
END
$$;

CREATE TRIGGER queue_removed_maildirs AFTER DELETE ON public.users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.queue_removed_maildirs();

-- keep_reused_maildirs(): AFTER INSERT ... FOR EACH STATEMENT on users. A new mailbox
-- whose path is queued takes the directory back. If a purge holds that entry (it locks
-- it while deleting), this waits for the purge to finish first.
CREATE FUNCTION public.keep_reused_maildirs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM public.maildir_purge_queue) THEN  -- usually empty: imports pay nothing
        DELETE FROM public.maildir_purge_queue q WHERE q.maildir IN (SELECT n.maildir FROM new_rows n);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER keep_reused_maildirs AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.keep_reused_maildirs();

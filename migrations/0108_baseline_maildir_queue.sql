-- maildir_purge_queue: the maildirs of removed mailboxes, waiting for `mailbook maildirs
-- purge` to delete them from disk. Removing a mailbox in SQL cannot touch files (and
-- must not: the database server has no business in the mail store), so the removal
-- queues the path, in the same transaction, whichever way the row went (API, cascade
-- from remove_domain, or the owner's DML). A mailbox added again with a queued path
-- takes it back (its entry is dropped, the mail is kept); the purge deletes a directory
-- only if no mailbox uses that path by then.
-- depends: 0107_baseline_aliases_and_send_as

CREATE TABLE public.maildir_purge_queue (
    maildir  text PRIMARY KEY
             CONSTRAINT maildir_purge_queue_maildir_valid CHECK (public.maildir_error(maildir) IS NULL),
    -- the mailbox that last had it, for the listing
    email    text NOT NULL,
    queued   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.maildir_purge_queue IS
'Maildirs of removed mailboxes, waiting for `mailbook maildirs purge` to delete them from disk (SQL cannot touch files). A mailbox added again with a queued path takes it back.';
COMMENT ON COLUMN public.maildir_purge_queue.maildir IS 'The maildir, relative to the mail base.';
COMMENT ON COLUMN public.maildir_purge_queue.email IS 'The mailbox that used it.';
COMMENT ON COLUMN public.maildir_purge_queue.queued IS 'When the mailbox was removed.';

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
COMMENT ON FUNCTION public.queue_removed_maildirs() IS 'Trigger: a removed mailbox''s maildir joins maildir_purge_queue.';

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
COMMENT ON FUNCTION public.keep_reused_maildirs() IS 'Trigger: a mailbox added with a queued maildir takes it back from the purge queue.';

CREATE TRIGGER keep_reused_maildirs AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.keep_reused_maildirs();

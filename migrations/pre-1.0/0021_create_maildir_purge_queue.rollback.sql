-- Undo 0021. Refused while maildirs wait to be purged: the queue is the only record of
-- which directories on disk belong to nobody.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.maildir_purge_queue) THEN
        RAISE EXCEPTION 'maildirs are queued for purging; run `mailbook maildirs purge` (or forget them) before rolling back 0021'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP TRIGGER queue_removed_maildirs ON public.users;
DROP TRIGGER keep_reused_maildirs ON public.users;
DROP FUNCTION public.keep_reused_maildirs();
DROP FUNCTION public.queue_removed_maildirs();
DROP TABLE public.maildir_purge_queue;

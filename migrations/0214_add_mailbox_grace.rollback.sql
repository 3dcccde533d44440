-- Undo 0214_add_mailbox_grace: the table of removed mailboxes and its triggers. Refused
-- while a removed mailbox is kept (rolling back would lose what restore_mailbox() brings
-- back, and leave its maildir on disk unqueued).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.removed_mailboxes) THEN
        RAISE EXCEPTION 'removed mailboxes are kept for restoring: restore them, or run `mailbook maildirs purge` after their window, or delete them as mailowner (DELETE FROM removed_mailboxes), if they are to be lost'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TRIGGER users_removed_apart ON public.users;
DROP TRIGGER users_removed_apart_on_update ON public.users;
DROP TRIGGER aliases_removed_apart ON public.aliases;
DROP TRIGGER aliases_removed_apart_on_update ON public.aliases;
DROP FUNCTION public.refuse_removed_mailbox_reuse();
DROP FUNCTION public.retire_removed_mailboxes(text[], text[]);
DROP FUNCTION public.removed_address_error(text);
DROP FUNCTION public.removed_maildirs_around(text);
DROP TABLE public.removed_mailboxes;

-- Undo 0216_add_mailbox_rename: former addresses of renamed mailboxes. Refused while one is
-- within its window (rolling back would bounce mail still queued for it).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.former_addresses WHERE until > now()) THEN
        RAISE EXCEPTION 'former addresses of renamed mailboxes are still resolved: wait for their window to end, or delete them from former_addresses'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TRIGGER aliases_former_apart_on_update ON public.aliases;
DROP TRIGGER aliases_former_apart ON public.aliases;
DROP TRIGGER users_former_apart_on_update ON public.users;
DROP TRIGGER users_former_apart ON public.users;
DROP FUNCTION public.refuse_former_address_reuse();
DROP TABLE public.former_addresses;

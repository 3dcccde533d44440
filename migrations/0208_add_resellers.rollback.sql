-- Undo 0208_add_resellers: the resellers and the largest-mailbox cap. Refused while a
-- reseller or such a cap exists (rolling back would silently lift limits a customer was
-- promised, or leave a reseller's domains without their limits).
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.resellers) THEN
        RAISE EXCEPTION 'resellers exist: unmake them first (mailbook admin remove NAME)'
              USING ERRCODE = '2BP01';
    END IF;
    IF EXISTS (SELECT FROM public.transports WHERE max_mailbox_quota_bytes IS NOT NULL) THEN
        RAISE EXCEPTION 'domains cap their largest mailbox quota: lift it first (mailbook domain limits DOMAIN)'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP TRIGGER mailbox_quota_cap_on_insert ON public.users;
DROP TRIGGER mailbox_quota_cap_on_update ON public.users;
DROP FUNCTION public.refuse_oversized_mailboxes();
DROP TRIGGER reseller_limits_on_insert ON public.users;
DROP TRIGGER reseller_limits_on_update ON public.users;
DROP TRIGGER reseller_limits_on_insert ON public.admin_scopes;
DROP TRIGGER reseller_limits_on_update ON public.admin_scopes;
DROP FUNCTION public.refuse_over_reseller_limits();
ALTER TABLE public.transports DROP COLUMN max_mailbox_quota_bytes;
DROP TABLE public.resellers;

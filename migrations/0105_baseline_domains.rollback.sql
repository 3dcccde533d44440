-- Undo 0105_baseline_domains. Refused while domains exist: rolling back would drop them
-- without anyone deciding so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.transports) THEN
        RAISE EXCEPTION 'domains exist; remove them (remove_domain) before rolling back 0105_baseline_domains'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP TABLE public.transports;
DROP FUNCTION public.refuse_mailboxes_in_relay_domains();
DROP FUNCTION public.refuse_over_domain_limits();
DROP FUNCTION public.refuse_unhosted_domains();
DROP FUNCTION public.refuse_orphaning_domains();
DROP FUNCTION public.refuse_alias_domain_misuse();
DROP FUNCTION public.is_relay_transport(text);

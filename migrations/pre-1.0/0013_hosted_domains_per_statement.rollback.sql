-- Undo 0013_hosted_domains_per_statement: the foreign keys of 0006 and 0007
-- again. Adding them checks every existing row, so this fails (23503) if any mailbox
-- or alias names a domain that is not hosted.

DROP TRIGGER transports_keep_used_domains_on_truncate ON public.transports;
DROP TRIGGER transports_keep_used_domains_on_update ON public.transports;
DROP TRIGGER transports_keep_used_domains ON public.transports;
DROP TRIGGER aliases_domain_hosted_on_update ON public.aliases;
DROP TRIGGER aliases_domain_hosted ON public.aliases;
DROP TRIGGER users_domain_hosted_on_update ON public.users;
DROP TRIGGER users_domain_hosted ON public.users;
DROP FUNCTION public.refuse_orphaning_domains();
DROP FUNCTION public.refuse_unhosted_domains();

ALTER TABLE public.users ADD CONSTRAINT users_domain_hosted
    FOREIGN KEY (domain) REFERENCES public.transports (domain);
ALTER TABLE public.aliases ADD CONSTRAINT aliases_domain_hosted
    FOREIGN KEY (domain) REFERENCES public.transports (domain);

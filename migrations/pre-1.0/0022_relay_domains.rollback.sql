-- Undo 0022: the rule goes; relay domains stay what their transport says.
DROP TRIGGER relay_domains_hold_no_mailboxes ON public.users;
DROP TRIGGER relay_domains_hold_no_mailboxes ON public.transports;
DROP FUNCTION public.refuse_mailboxes_in_relay_domains();
DROP FUNCTION public.is_relay_transport(text);

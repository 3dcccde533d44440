-- Undo 0102_baseline_validation: the helpers go, dependants first.
DROP FUNCTION public.service_list_error(text[]);
DROP FUNCTION public.default_maildir(text);
DROP FUNCTION public.normalised_password_hash(text);
DROP FUNCTION public.password_error(text);
DROP FUNCTION public.password_hash_error(text);
DROP FUNCTION public.realname_error(text);
DROP FUNCTION public.transport_error(text);
DROP FUNCTION public.maildir_error(text);
DROP FUNCTION public.alias_error(text);
DROP FUNCTION public.address_error(text);
DROP FUNCTION public.domain_name_error(text);
DROP FUNCTION public.code_point(text);
DROP FUNCTION public.quoted(text);

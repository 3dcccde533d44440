-- Undo 0004_create_validation_functions.
DROP FUNCTION public.password_hash_error(text);
DROP FUNCTION public.transport_error(text);
DROP FUNCTION public.maildir_error(text);
DROP FUNCTION public.address_error(text);
DROP FUNCTION public.domain_name_error(text);
DROP FUNCTION public.quoted(text);

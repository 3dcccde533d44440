-- Undo 0009_create_import_helpers: the realname CHECK goes back to its inline form.
ALTER TABLE public.users DROP CONSTRAINT users_realname_printable;
ALTER TABLE public.users ADD CONSTRAINT users_realname_printable
    CHECK (realname !~ '[[:cntrl:]]' AND length(realname) <= 255);
DROP FUNCTION public.realname_error(text);
DROP FUNCTION public.default_maildir(text);
DROP FUNCTION public.normalised_password_hash(text);
DROP FUNCTION public.password_error(text);

-- Undo 0205_add_auth_cache_changes: the change record of `mailbook dovecot follow` and its
-- triggers. A follower left running fails on its next batch (auth_cache_changed_users() is gone).
DROP TRIGGER transports_auth_cache_changes_truncate ON public.transports;
DROP TRIGGER transports_auth_cache_changes_update ON public.transports;
DROP TRIGGER users_auth_cache_changes_truncate ON public.users;
DROP TRIGGER users_auth_cache_changes_delete ON public.users;
DROP TRIGGER users_auth_cache_changes_update ON public.users;
DROP TRIGGER users_auth_cache_changes_insert ON public.users;
DROP FUNCTION public.truncate_auth_cache_changes();
DROP FUNCTION public.transports_auth_cache_changes();
DROP FUNCTION public.users_auth_cache_changes();
DROP FUNCTION public.record_auth_cache_changes(text[], text[]);
DROP TABLE public.auth_cache_changes_horizon;
DROP TABLE public.auth_cache_changes;

-- Undo 0211_record_vacation_auth_cache_changes: vacation changes are no longer recorded for
-- `mailbook dovecot follow`. Run `mailbook dovecot install` of the release rolled back to
-- (its user_query asks for no sieve_before; the plugin's sieve_before reads every delivery).
DROP TRIGGER vacations_auth_cache_changes_truncate ON public.vacations;
DROP TRIGGER vacations_auth_cache_changes_delete ON public.vacations;
DROP TRIGGER vacations_auth_cache_changes_update ON public.vacations;
DROP TRIGGER vacations_auth_cache_changes_insert ON public.vacations;
DROP FUNCTION public.vacations_auth_cache_changes();

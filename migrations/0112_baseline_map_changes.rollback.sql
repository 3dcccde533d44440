-- Undo 0112_baseline_map_changes: the change record of `mailbook maps follow` and its triggers. A follower
-- left running afterwards fails on its next batch (compiled_map_changes() is gone).
DO $triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'aliases', 'send_as', 'transports'] LOOP
        EXECUTE format('DROP TRIGGER %1$s_map_changes_insert ON public.%1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_map_changes_update ON public.%1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_map_changes_delete ON public.%1$I', t);
        EXECUTE format('DROP TRIGGER %1$s_map_changes_truncate ON public.%1$I', t);
    END LOOP;
END
$triggers$;
DROP FUNCTION public.truncate_map_changes();
DROP FUNCTION public.transports_map_changes();
DROP FUNCTION public.send_as_map_changes();
DROP FUNCTION public.aliases_map_changes();
DROP FUNCTION public.users_map_changes();
DROP FUNCTION public.record_map_changes(text[], text[]);
DROP INDEX public.send_as_address_domain_idx;
DROP TABLE public.map_changes_horizon;
DROP TABLE public.map_changes;

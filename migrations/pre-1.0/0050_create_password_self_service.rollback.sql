-- Undo 0050: no self-service policy, failure record, REFUSED audit rows or mailwebmail access.
REVOKE USAGE ON SCHEMA public FROM mailwebmail;
DO $db$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM mailwebmail', current_database());
END
$db$;
DELETE FROM public.audit_log WHERE operation = 'REFUSED';
ALTER TABLE public.audit_log DROP COLUMN reason,
    DROP CONSTRAINT audit_log_operation_known,
    ADD CONSTRAINT audit_log_operation_known CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'));
DROP TABLE public.password_failures;
ALTER TABLE public.settings DROP COLUMN password_failure_window,
    DROP COLUMN password_max_failures,
    DROP COLUMN password_min_length;

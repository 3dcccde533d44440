-- Undo 0015: the triggers go with their functions (CASCADE), then the log itself.
DROP FUNCTION public.audit_statement() CASCADE;
DROP FUNCTION public.audit_update() CASCADE;
DROP TABLE public.audit_log;

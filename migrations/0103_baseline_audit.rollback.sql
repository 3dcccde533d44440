-- Undo 0103_baseline_audit: the log and its trigger functions (the mail tables' audit
-- triggers went with their tables, rolled back before this).
DROP FUNCTION public.audit_update();
DROP FUNCTION public.audit_statement();
DROP TABLE public.audit_log;

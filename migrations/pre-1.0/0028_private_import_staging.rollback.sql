-- Undo 0028: the password columns are sampled by ANALYZE again.
ALTER TABLE public.import_staging ALTER COLUMN password SET STATISTICS -1;
ALTER TABLE public.import_staging ALTER COLUMN password_hash SET STATISTICS -1;

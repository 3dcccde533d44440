-- Undo 0010_create_import_staging.
DROP VIEW public.import_rows;
DROP TABLE public.import_staging;

-- Undo 0109_baseline_import. A staged batch lives only inside its importing transaction,
-- so the table holds nothing to keep.
DROP VIEW public.import_lines;
DROP VIEW public.import_rows;
DROP TABLE public.import_staging;
DROP FUNCTION public.vacation_time_error(text, text);
DROP FUNCTION public.vacation_time(text);
DROP FUNCTION public.csv_cell_in(text);
DROP FUNCTION public.csv_cell_out(text);

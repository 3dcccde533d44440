-- Undo 0104_baseline_settings.
DROP TABLE public.settings;

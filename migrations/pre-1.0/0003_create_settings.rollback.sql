-- Undo 0003_create_settings.
DROP TABLE public.settings;

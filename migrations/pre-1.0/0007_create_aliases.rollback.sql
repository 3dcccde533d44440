-- Undo 0007_create_aliases.
DROP TABLE public.aliases;

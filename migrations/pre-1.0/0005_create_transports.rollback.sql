-- Undo 0005_create_transports.
DROP TABLE public.transports;

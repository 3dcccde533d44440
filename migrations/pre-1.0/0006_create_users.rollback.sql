-- Undo 0006_create_users.
DROP TABLE public.users;

-- Undo 0008_create_mailboxes_view.
DROP VIEW public.mailboxes;

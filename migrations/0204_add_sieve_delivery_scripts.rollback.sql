-- Undo 0204_add_sieve_delivery_scripts: the view goes (it holds no data of its own).
DROP VIEW public.sieve_delivery_scripts;

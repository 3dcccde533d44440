-- Undo 0110_baseline_passwords: the failure record is pruned to a few minutes anyway.
DROP TABLE public.password_failures;

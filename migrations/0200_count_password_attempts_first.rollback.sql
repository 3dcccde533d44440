-- Back to 1.0's password_failures (the failures move back; tickets are dropped).
CREATE TABLE public.password_failures (
    email     text PRIMARY KEY,
    failed_at timestamptz[] NOT NULL
);
COMMENT ON TABLE public.password_failures IS
'Recent wrong current passwords given to change_password(), per mailbox, for its lockout; times only.';
COMMENT ON COLUMN public.password_failures.email IS 'The mailbox.';
COMMENT ON COLUMN public.password_failures.failed_at IS 'When each failure happened, within the window.';
INSERT INTO public.password_failures (email, failed_at)
SELECT a.email, array_agg(a.at ORDER BY a.at) FROM public.password_attempts a WHERE NOT a.matched GROUP BY a.email;
DROP TABLE public.password_attempts;

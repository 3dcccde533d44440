-- Self-service password changes (change_password(), called by a webmail as mailwebmail)
-- keep, per mailbox, the times of recent wrong current passwords, so that guessing is
-- bounded (settings.password_max_failures within password_failure_window, 0104).
-- change_password() reads and writes a row only while it holds the mailbox's users row
-- FOR UPDATE, so attempts on one mailbox take turns and racing sessions cannot check
-- more than the limit between them. No foreign key: a row outlives its mailbox by at
-- most the window, and keeps nothing but times. Refusals are audited (0103, REFUSED).
-- depends: 0109_baseline_import

CREATE TABLE public.password_failures (
    email     text PRIMARY KEY,
    failed_at timestamptz[] NOT NULL
);
COMMENT ON TABLE public.password_failures IS
'Recent wrong current passwords given to change_password(), per mailbox, for its lockout; times only.';
COMMENT ON COLUMN public.password_failures.email IS 'The mailbox.';
COMMENT ON COLUMN public.password_failures.failed_at IS 'When each failure happened, within the window.';

-- One row of per-database settings that only mailowner (or a superuser) may change.
-- They live here and not in custom GUCs because any session may SET a custom GUC: a
-- mailadmin could then quietly lower the cost of the hashes it writes. The bcrypt cost
-- is bounded like password_hash_error()'s (a cost above 14 makes one login cost more
-- than a second of CPU); the password_* columns are change_password()'s policy and its
-- bound on guessing (self-service changes by a webmail, as mailwebmail).
-- depends: 0103_baseline_audit

CREATE TABLE public.settings (
    id                      boolean PRIMARY KEY DEFAULT true
                            CONSTRAINT settings_single_row CHECK (id),
    bcrypt_cost             integer NOT NULL DEFAULT 10
                            CONSTRAINT settings_bcrypt_cost_range CHECK (bcrypt_cost BETWEEN 4 AND 14),
    password_min_length     integer NOT NULL DEFAULT 12
                            CONSTRAINT settings_password_min_length_range CHECK (password_min_length BETWEEN 1 AND 72),
    password_max_failures   integer NOT NULL DEFAULT 5
                            CONSTRAINT settings_password_max_failures_positive CHECK (password_max_failures > 0),
    password_failure_window interval NOT NULL DEFAULT '15 minutes'
                            CONSTRAINT settings_password_failure_window_positive
                            CHECK (password_failure_window > interval '0')
);
COMMENT ON TABLE public.settings IS
'One row of per-database settings only mailowner may change (a table, not a GUC a session could SET).';
COMMENT ON COLUMN public.settings.id IS 'Always true: the table holds one row.';
COMMENT ON COLUMN public.settings.bcrypt_cost IS 'bcrypt cost for new hashes (default 10, about 60 ms a hash).';
COMMENT ON COLUMN public.settings.password_min_length IS 'Shortest password change_password() accepts from an end user.';
COMMENT ON COLUMN public.settings.password_max_failures IS 'Wrong current passwords change_password() allows per mailbox within the window.';
COMMENT ON COLUMN public.settings.password_failure_window IS 'The window for password_max_failures.';

INSERT INTO public.settings DEFAULT VALUES;

-- one row (id = true): no key to log
CREATE TRIGGER audit_update AFTER UPDATE ON public.settings
    FOR EACH ROW EXECUTE FUNCTION public.audit_update();

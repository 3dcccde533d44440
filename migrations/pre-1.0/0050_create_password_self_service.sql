-- Self-service password changes (change_password(), called by a webmail as mailwebmail):
-- the policy and the guessing bound as settings only mailowner changes, the per-mailbox
-- record of failed current passwords, and audit rows for refusals.
-- The policy applies to what a user chooses for themselves; the admin paths (add_mailbox,
-- set_password, an import's plaintext rows) keep password_error()'s rules only: an
-- admin sets first and temporary passwords, and moves users with the passwords they had.
-- depends: 0030_move_pgcrypto_out_of_public

DO $check$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mailwebmail') THEN
        RAISE EXCEPTION 'role mailwebmail does not exist'
              USING ERRCODE = '42704',
                    HINT = 'run `mailbook init` as a superuser first; it creates the roles';
    END IF;
END
$check$;

ALTER TABLE public.settings
    ADD COLUMN password_min_length integer NOT NULL DEFAULT 12
        CONSTRAINT settings_password_min_length_range CHECK (password_min_length BETWEEN 1 AND 72),
    ADD COLUMN password_max_failures integer NOT NULL DEFAULT 5
        CONSTRAINT settings_password_max_failures_positive CHECK (password_max_failures > 0),
    ADD COLUMN password_failure_window interval NOT NULL DEFAULT '15 minutes'
        CONSTRAINT settings_password_failure_window_positive CHECK (password_failure_window > interval '0');
COMMENT ON COLUMN public.settings.password_min_length IS
    'change_password(): a new password has at least this many characters (bcrypt reads 72 bytes)';
COMMENT ON COLUMN public.settings.password_max_failures IS
    'change_password(): after this many wrong current passwords within password_failure_window, refuse without checking';
COMMENT ON COLUMN public.settings.password_failure_window IS
    'change_password(): how long a wrong current password counts against its mailbox';

-- One row per mailbox with recent wrong current passwords. change_password() reads and
-- writes it only while it holds the mailbox's users row FOR UPDATE, so attempts on one
-- mailbox take turns and racing sessions cannot check more than the limit between them.
-- No foreign key: a row outlives its mailbox by at most the window, and keeps nothing but times.
CREATE TABLE public.password_failures (
    email     text PRIMARY KEY,
    failed_at timestamptz[] NOT NULL
);
COMMENT ON TABLE public.password_failures IS
    'Times of recent wrong current passwords given to change_password(), per mailbox (pruned to the window)';

-- Refused self-service changes are audited too: operation REFUSED, with the reason (an
-- SQLSTATE and its sentence, never a value).
ALTER TABLE public.audit_log DROP CONSTRAINT audit_log_operation_known,
    ADD CONSTRAINT audit_log_operation_known
        CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFUSED')),
    ADD COLUMN reason text;
COMMENT ON COLUMN public.audit_log.reason IS
    'REFUSED only: why (SQLSTATE and message); never a password';

-- mailwebmail may connect and look the API's names up; it gets EXECUTE on
-- change_password() alone (sql/api/25_change_password.sql).
DO $db$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailwebmail', current_database());
END
$db$;
GRANT USAGE ON SCHEMA public TO mailwebmail;

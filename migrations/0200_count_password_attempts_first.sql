-- A self-service password change is now two calls, and the guess is counted before it is
-- answered (issue 28): in 1.0, change_password() wrote the failure and its audit row in
-- the caller's transaction, so a caller that rolled back each call guessed without limit
-- and without trace. Now check_current_password() checks the guess and
-- records the attempt, its outcome and (for a wrong one) the audit row, and answers only
-- with a ticket; change_password(email, ticket, new) tells the outcome, and only for a
-- ticket some earlier transaction committed. A rolled-back check has told nothing; a told
-- outcome was committed first. (sql/api/25_change_password.sql says the rest.)
-- Attempts replace password_failures: one row per checked guess, never a password.
-- depends: 0112_baseline_map_changes

CREATE TABLE public.password_attempts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email   text NOT NULL CONSTRAINT password_attempts_email_bounded CHECK (octet_length(email) <= 254),
    at      timestamptz NOT NULL DEFAULT statement_timestamp(),
    matched boolean NOT NULL,
    ticket  uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid() UNIQUE,
    txid    xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
COMMENT ON TABLE public.password_attempts IS
'Current passwords checked by check_current_password(), one row per guess, for the lockout and for change_password()''s ticket; never a password.';
COMMENT ON COLUMN public.password_attempts.id IS 'Order of checking.';
COMMENT ON COLUMN public.password_attempts.email IS 'The address tried (a mailbox or not: a missing one is counted the same way).';
COMMENT ON COLUMN public.password_attempts.at IS 'When it was checked; rows older than settings.password_failure_window are pruned.';
COMMENT ON COLUMN public.password_attempts.matched IS 'Whether the current password was right; false rows count towards password_max_failures.';
COMMENT ON COLUMN public.password_attempts.ticket IS 'What change_password() takes to tell the outcome: random, shown once to the checking session.';
COMMENT ON COLUMN public.password_attempts.txid IS 'The checking transaction: change_password() refuses a ticket of its own transaction (not yet committed).';
CREATE INDEX password_attempts_email_at_idx ON public.password_attempts (email, at);
CREATE INDEX password_attempts_at_idx ON public.password_attempts (at);

-- the failures within the window move over, so no lockout is lifted by the upgrade
INSERT INTO public.password_attempts (email, at, matched)
SELECT f.email, x.at, false FROM public.password_failures f, unnest(f.failed_at) AS x(at)
 WHERE octet_length(f.email) <= 254;
DROP TABLE public.password_failures;

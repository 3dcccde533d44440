-- Self-service password changes: what a webmail's password form calls (migration 0050).
--
-- change_password() reports a refusal as its result, never as an error, for two reasons
-- measured with Roundcube 1.6 and PostgreSQL 15:
-- * an error rolls back everything the function wrote: the failure it must count
--   against the mailbox and the audit row saying so would vanish with it, and guessing
--   would be unbounded and unaudited;
-- * Roundcube's SQL driver writes both passwords into the statement as literals, and on
--   any database error logs that statement, passwords included, in its errors log (as
--   PostgreSQL does with log_min_error_statement; mailwebmail's role settings turn that
--   off, see sql/roles.sql).
-- Each refusal still has its own SQLSTATE, in the result's code column:
--   28P01  the current password is wrong (also: no active mailbox of that address)
--   MB004  too many wrong current passwords lately: refused without checking
--   0A000  the stored hash is of a scheme SQL cannot check (password_matches())
--   MB001  the new password is shorter than settings.password_min_length
--   MB002  the new password is the current one
--   MB003  the new password contains the address's local part
--   22023  the new password breaks password_error()'s rules (empty, over 72 bytes, a hash)
--   22004  an argument is NULL

-- password_policy_check(email, password) -> (code, message)
-- Caller: the API (change_password, password_policy_error); granted to nobody. NULLs when
-- password meets the self-service policy for the address email, else the SQLSTATE and
-- one sentence a user can read (never the password): password_error()'s rules, at least
-- settings.password_min_length characters, and not the address's local part inside it
-- (local parts of three characters or more, ignoring case: a one-letter local part would
-- forbid that letter).
CREATE FUNCTION public.password_policy_check(email text, password text, OUT code text, OUT message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    min_length integer;
    local_part text := lower(split_part(password_policy_check.email, '@', 1));
BEGIN
    message := public.password_error(password);
    IF message IS NOT NULL THEN
        code := CASE WHEN password IS NULL THEN '22004' ELSE '22023' END;
        RETURN;
    END IF;
    SELECT s.password_min_length INTO STRICT min_length FROM public.settings s;
    IF char_length(password) < min_length THEN
        code := 'MB001';
        message := format('the new password must have at least %s characters', min_length);
    ELSIF char_length(local_part) >= 3 AND strpos(lower(password), local_part) > 0 THEN
        code := 'MB003';
        message := format('the new password must not contain %s, the name in the address', public.quoted(local_part));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.password_policy_check(text, text) FROM PUBLIC;

-- password_policy_error(email, password) -> text
-- Caller: members of mailadmin: a front-end may hold a password it sets to the
-- self-service policy before calling set_password() (the admin paths do not apply it).
-- NULL when password meets the policy for the address email, else why not.
CREATE FUNCTION public.password_policy_error(email text, password text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT c.message FROM public.password_policy_check(email, password) c $$;
REVOKE ALL ON FUNCTION public.password_policy_error(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.password_policy_error(text, text) TO mailadmin;

-- audit_refusal(key, reason) -> void
-- Caller: change_password(); granted to nobody. One REFUSED row in audit_log, as the
-- triggers write theirs (the login, the role it acts as, the transaction).
CREATE FUNCTION public.audit_refusal(key text, reason text) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
INSERT INTO public.audit_log (login_role, acting_role, txid, table_name, operation, row_key, reason)
VALUES (session_user,
        CASE current_setting('role') WHEN 'none' THEN session_user ELSE current_setting('role') END,
        pg_current_xact_id(), 'users', 'REFUSED', key, reason)
$$;
REVOKE ALL ON FUNCTION public.audit_refusal(text, text) FROM PUBLIC;

-- change_password(email, current_password, new_password) -> (changed, code, message)
-- Caller: mailwebmail, the webmail's login (`mailbook roundcube install` writes
-- Roundcube's query: SELECT 1 FROM public.change_password(%u, %o, %p) WHERE changed).
-- Runs as mailowner. One row: (true, '00000', 'password changed'), or false with the
-- refusal's SQLSTATE and one sentence for the user (see the top of this file). Verifies
-- the current password of an active mailbox in an active domain, applies the policy and
-- stores the new one as set_password() does (bcrypt at settings.bcrypt_cost).
-- Guessing is bounded: after settings.password_max_failures wrong current passwords
-- within settings.password_failure_window, attempts are refused without checking until
-- the oldest of them leaves the window; refusals during a lockout do not extend it; a
-- right current password clears the count, as does set_password(). Attempts on one
-- mailbox take turns on its users row (FOR UPDATE, held to commit), so sessions racing
-- cannot check more than the limit between them. A mailbox that does not exist costs a
-- bcrypt too, and answers as a wrong password. Audited: a change as the users UPDATE
-- (column password), every refusal as a REFUSED row with its reason; never a password.
CREATE FUNCTION public.change_password(email text, current_password text, new_password text,
                                       OUT changed boolean, OUT code text, OUT message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address  text := lower(change_password.email);
    s        public.settings;
    stored   text;
    recent   timestamptz[];
    matches  boolean;
BEGIN
    changed := false;
    SELECT * INTO STRICT s FROM public.settings;
    IF address IS NULL OR current_password IS NULL OR new_password IS NULL THEN
        code := '22004';
        message := 'the address, the current and the new password must not be NULL';
        PERFORM public.audit_refusal(address, code || ': ' || message);
        RETURN;
    END IF;
    -- from here to commit, other attempts on this mailbox wait
    SELECT u.password INTO stored
      FROM public.users u JOIN public.transports t ON t.domain = u.domain
     WHERE u.email = address AND u.active AND t.active
       FOR UPDATE OF u;
    IF NOT FOUND THEN
        PERFORM crypto.crypt(current_password, crypto.gen_salt('bf', s.bcrypt_cost));
        code := '28P01';
        message := 'the current password is wrong';
        PERFORM public.audit_refusal(address, code || ': no active mailbox of this address');
        RETURN;
    END IF;
    SELECT coalesce(array_agg(x.at ORDER BY x.at), '{}') INTO recent
      FROM public.password_failures f, unnest(f.failed_at) AS x(at)
     WHERE f.email = address AND x.at > now() - s.password_failure_window;
    IF cardinality(recent) >= s.password_max_failures THEN
        code := 'MB004';
        message := format('too many wrong current passwords: try again in %s minute(s)',
                          ceil(extract(epoch FROM recent[cardinality(recent) - s.password_max_failures + 1]
                                                + s.password_failure_window - now()) / 60));
        PERFORM public.audit_refusal(address, format('%s: %s wrong current passwords since %s; not checked',
                                                     code, cardinality(recent), recent[1]));
        RETURN;
    END IF;
    matches := public.password_matches(stored, current_password);
    IF matches IS NULL THEN
        code := '0A000';
        message := format('this mailbox''s password is stored as %s, which cannot be checked here: '
                          'ask your administrator to set a new one', public.password_scheme(stored));
        PERFORM public.audit_refusal(address, code || ': ' || message);
        RETURN;
    ELSIF NOT matches THEN
        INSERT INTO public.password_failures AS f (email, failed_at) VALUES (address, recent || now())
            ON CONFLICT ON CONSTRAINT password_failures_pkey DO UPDATE SET failed_at = excluded.failed_at;
        code := '28P01';
        message := 'the current password is wrong';
        PERFORM public.audit_refusal(address, format('%s: %s (%s of %s within %s)', code, message,
                                                     cardinality(recent) + 1, s.password_max_failures,
                                                     s.password_failure_window));
        RETURN;
    END IF;
    DELETE FROM public.password_failures f WHERE f.email = address;
    IF new_password = current_password THEN
        code := 'MB002';
        message := 'the new password must differ from the current one';
    ELSE
        SELECT c.code, c.message INTO code, message FROM public.password_policy_check(address, new_password) c;
    END IF;
    IF code IS NOT NULL THEN
        PERFORM public.audit_refusal(address, code || ': ' || message);
        RETURN;
    END IF;
    UPDATE public.users u
       SET password = public.hash_password(new_password), modified = now()
     WHERE u.email = address;
    changed := true;
    code := '00000';
    message := 'password changed';
END
$$;
REVOKE ALL ON FUNCTION public.change_password(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.change_password(text, text, text) TO mailwebmail;

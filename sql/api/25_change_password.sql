-- Self-service password changes: what a webmail's password form calls (issue 20; two
-- calls since issue 28).
--
-- 1. check_current_password(email, current_password) -> (ticket, code, message)
--    checks the guess, records it in password_attempts (a wrong one also as a REFUSED
--    audit row) and answers with a ticket whatever the outcome: the outcome is not told.
-- 2. The caller commits (autocommit does).
-- 3. change_password(email, ticket, new_password) -> (changed, code, message) tells the
--    outcome and, for a right current password, applies the policy and stores the new
--    one. It refuses a ticket that its own transaction wrote: only a committed check
--    counts, so a guess is told only after it was counted and audited for good.
-- Why two calls. In 1.0 one call checked, counted and answered in the caller's
-- transaction: `BEGIN; SELECT change_password(...); ROLLBACK;` (or an error raised in the
-- same statement after the answer, `SELECT 1/0 ... WHERE code = '28P01'`) undid the count
-- and the audit row while keeping the answer, so the webmail's password (in a file every
-- www-data process reads) guessed without limit or trace. PostgreSQL has no autonomous
-- transaction (dblink would need a credential or a superuser's function), and whatever
-- one statement writes, the same statement can roll back; so the write and the answer
-- are put in two transactions, in that order.
-- Refusals are results, never errors: an error rolls back what the function wrote, and
-- Roundcube's stock SQL driver logs a failed statement with its literals (passwords);
-- `mailbook roundcube install` ships a driver that binds them instead
-- (mailbook/roundcube.py). Codes:
--   28P01  the current password is wrong; also: no active mailbox of that address, or a
--          stored hash SQL cannot check (the audit row says which), answered the same
--          way, in about the same time (one bcrypt at settings.bcrypt_cost), and counted
--          the same way, so that nobody learns which addresses are mailboxes
--   MB004  too many wrong current passwords lately: refused without checking
--   MB005  another check of this address is running: try again
--   MB006  the ticket is unknown, expired (60 s), not yet committed, or of another address
--   MB001  the new password is shorter than settings.password_min_length
--   MB002  the new password is the current one
--   MB003  the new password contains the address's local part
--   22023  the new password breaks password_error()'s rules; or the address is no address
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
-- Caller: check_current_password(), change_password(); granted to nobody. One REFUSED
-- row in audit_log, as the triggers write theirs (the login, the role it acts as, the
-- transaction). key is an address already bounded by check_current_password().
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

-- check_current_password(email, current_password) -> (ticket, code, message)
-- Caller: mailwebmail (the webmail's driver), first of two calls (see the top of this
-- file). Runs as mailowner. Answers a ticket (code '00000', 'checked') for every checked
-- guess, right or wrong, or a refusal without a ticket that does not depend on the
-- guess: 22004 (NULL), 22023 (not an address: checked before anything is written, so
-- no value of any size is stored), MB004 (lockout), MB005 (a check of this address is
-- running). Before checking, it counts the wrong guesses of the address within
-- settings.password_failure_window; at settings.password_max_failures it refuses
-- without checking until the oldest leaves the window (refusals do not extend it).
-- Checks of one address take turns on a transaction-level advisory lock, waited for at
-- most 5 s, so racing sessions cannot check more than the limit between them, and an
-- idle transaction holding it blocks only checks of that address, never the admin
-- functions (which take no such lock and touch no row a check holds). Costs about one
-- bcrypt at settings.bcrypt_cost whatever the address: a missing mailbox and a stored
-- hash cheaper than that cost (imported, say) are topped up with a bcrypt of that cost.
-- Each call prunes up to 100 attempts older than the window.
CREATE FUNCTION public.check_current_password(email text, current_password text,
                                              OUT ticket uuid, OUT code text, OUT message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '5s'
AS $$
DECLARE
    address text;
    s       public.settings;
    stored  text;
    failed  timestamptz[];
    matches boolean;
    reason  text;
    cost    integer;
BEGIN
    IF check_current_password.email IS NULL OR current_password IS NULL THEN
        code := '22004';
        message := 'the address and the current password must not be NULL';
        RETURN;
    END IF;
    -- bounded before anything else: the fast path of address_error() is one pattern
    IF octet_length(check_current_password.email) > 254
       OR public.address_error(lower(check_current_password.email)) IS NOT NULL THEN
        code := '22023';
        message := 'the address is not a valid email address';
        RETURN;
    END IF;
    address := lower(check_current_password.email);
    SELECT * INTO STRICT s FROM public.settings;
    BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended('mailbook check_current_password ' || address, 0));
    EXCEPTION WHEN lock_not_available THEN
        code := 'MB005';
        message := 'another check of this password is running: try again in a moment';
        RETURN;
    END;
    DELETE FROM public.password_attempts a
     WHERE a.id IN (SELECT o.id FROM public.password_attempts o
                     WHERE o.at < now() - s.password_failure_window
                     ORDER BY o.at LIMIT 100 FOR UPDATE SKIP LOCKED);
    SELECT coalesce(array_agg(a.at ORDER BY a.at), '{}') INTO failed
      FROM public.password_attempts a
     WHERE a.email = address AND NOT a.matched AND a.at > now() - s.password_failure_window;
    IF cardinality(failed) >= s.password_max_failures THEN
        code := 'MB004';
        message := format('too many wrong current passwords: try again in %s minute(s)',
                          ceil(extract(epoch FROM failed[cardinality(failed) - s.password_max_failures + 1]
                                                + s.password_failure_window - now()) / 60));
        PERFORM public.audit_refusal(address, format('%s: %s wrong current passwords since %s; not checked',
                                                     code, cardinality(failed), failed[1]));
        RETURN;
    END IF;
    SELECT u.password INTO stored
      FROM public.users u JOIN public.transports t ON t.domain = u.domain
     WHERE u.email = address AND u.active AND t.active;
    IF FOUND THEN
        matches := public.password_matches(stored, current_password);
        cost := substring(stored FROM '^(?:\{[^}]*\})?\$2[abxy]\$([0-9]{2})\$')::integer;
        reason := CASE WHEN matches IS NULL
                       THEN format('stored as %s, which cannot be checked here: set a new password',
                                   public.password_scheme(stored))
                       WHEN NOT matches THEN 'the current password is wrong' END;
    ELSE
        reason := 'no active mailbox of this address';
    END IF;
    IF cost IS NULL OR cost < s.bcrypt_cost THEN
        PERFORM crypto.crypt(current_password, crypto.gen_salt('bf', s.bcrypt_cost));
    END IF;
    INSERT INTO public.password_attempts AS a (email, matched) VALUES (address, coalesce(matches, false))
    RETURNING a.ticket INTO ticket;
    IF reason IS NOT NULL THEN
        PERFORM public.audit_refusal(address, format('28P01: %s (%s of %s within %s)', reason,
                                                     cardinality(failed) + 1, s.password_max_failures,
                                                     s.password_failure_window));
    END IF;
    code := '00000';
    message := 'checked: ask change_password() with the ticket after committing';
END
$$;
REVOKE ALL ON FUNCTION public.check_current_password(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.check_current_password(text, text) TO mailwebmail;

-- change_password(email, ticket, new_password) -> (changed, code, message)
-- Caller: mailwebmail, second of two calls, after the transaction of
-- check_current_password() committed (see the top of this file). Runs as mailowner.
-- One row: (true, '00000', 'password changed'), or false with the refusal's SQLSTATE and
-- one sentence for the user. A ticket is good for 60 s, for its address, and only once
-- committed by an earlier transaction (MB006 otherwise); a wrong guess answers 28P01
-- (its count and audit row were committed with the check); a right one is held to the
-- policy (password_policy_check(), MB002) and the new password is stored as
-- set_password() stores it, which ends the mailbox's count. Audited: the change as the
-- users UPDATE (column password), a policy refusal as a REFUSED row; never a password.
CREATE FUNCTION public.change_password(email text, ticket uuid, new_password text,
                                       OUT changed boolean, OUT code text, OUT message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(change_password.email);
    attempt public.password_attempts;
    current text;
    stale   constant text := 'this check is unknown, expired or not yet committed: check the current password again';
BEGIN
    changed := false;
    IF address IS NULL OR ticket IS NULL OR new_password IS NULL THEN
        code := '22004';
        message := 'the address, the ticket and the new password must not be NULL';
        RETURN;
    END IF;
    SELECT * INTO attempt FROM public.password_attempts a WHERE a.ticket = change_password.ticket;
    IF NOT FOUND OR attempt.email <> address OR attempt.at < now() - interval '60 seconds'
       OR attempt.txid = pg_current_xact_id_if_assigned() THEN
        code := 'MB006';
        message := stale;
        RETURN;
    END IF;
    IF NOT attempt.matched THEN
        code := '28P01';
        message := 'the current password is wrong';
        RETURN;
    END IF;
    SELECT u.password INTO current FROM public.users u WHERE u.email = address AND u.active FOR UPDATE;
    IF NOT FOUND THEN
        code := 'MB006';
        message := stale;
        RETURN;
    END IF;
    IF public.password_matches(current, new_password) THEN
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
    DELETE FROM public.password_attempts a WHERE a.email = address;
    changed := true;
    code := '00000';
    message := 'password changed';
END
$$;
REVOKE ALL ON FUNCTION public.change_password(text, uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.change_password(text, uuid, text) TO mailwebmail;

-- App passwords (migration 0212, table app_passwords): named, revocable passwords of a
-- mailbox, each for chosen services. Dovecot checks them in a second passdb, asked only
-- after the main password failed (dovecot/dovecot-sql-app-passwords.conf.ext): the
-- password's first 8 characters (its token, not secret) find the one row, Dovecot checks
-- the whole password against its bcrypt hash. A password is generated here and returned
-- once: no secret is ever in a statement's text or parameters (the server log can hold
-- both), and only its hash is stored. The audit log records the key (email, name).

-- app_password_generate() -> text
-- Caller: add_app_password(); granted to nobody. 32 characters from 32 letters and digits
-- that read unambiguously (no l, o, 0, 1): 160 bits from gen_random_bytes, 8 of them the
-- token Dovecot looks the row up by, 120 bits of secret after it.
CREATE FUNCTION public.app_password_generate() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    letters constant text := 'abcdefghijkmnpqrstuvwxyz23456789';
    bytes constant bytea := crypto.gen_random_bytes(32);
BEGIN
    -- 256 is a multiple of 32: every letter is equally likely
    RETURN (SELECT string_agg(substr(letters, get_byte(bytes, i) % 32 + 1, 1), '' ORDER BY i)
              FROM generate_series(0, 31) AS i);
END
$$;
REVOKE ALL ON FUNCTION public.app_password_generate() FROM PUBLIC;

-- add_app_password(email, name, services) -> text (the password, shown once)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox app-password add`). Runs as mailowner. Generates the
-- password, stores its bcrypt hash (settings.bcrypt_cost) and returns it: it cannot be
-- read again, only revoked. services: some of imap, pop3, smtp (Postfix's SASL),
-- submission, sieve. Raises P0002 for an unknown mailbox, 22023 for a name that is not
-- 1-64 letters, digits, spaces and ._@+- (starting with a letter or digit), an unknown
-- service or none, 22004 for NULLs, 23505 if the mailbox has an app password of that
-- name, 42501 for a customer's admin outside its domains (before the lookup).
CREATE FUNCTION public.add_app_password(email text, name text, services text[]) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address constant text := lower(add_app_password.email);
    svc     text[];
    pw      text;
BEGIN
    IF address IS NULL OR add_app_password.name IS NULL THEN
        RAISE EXCEPTION 'email and name must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF add_app_password.services IS NULL THEN
        RAISE EXCEPTION 'services must not be NULL' USING ERRCODE = '22004';
    END IF;
    svc := ARRAY(SELECT lower(s) FROM unnest(add_app_password.services) AS s);
    PERFORM public.assert_valid(public.service_list_error(svc));
    svc := ARRAY(SELECT DISTINCT s FROM unnest(svc) AS s ORDER BY 1);
    IF svc = '{}' THEN
        RAISE EXCEPTION 'an app password needs at least one service (imap, pop3, smtp, submission, sieve)'
              USING ERRCODE = '22023';
    END IF;
    IF add_app_password.name !~ '^[[:alnum:]][[:alnum:] ._@+-]{0,63}$' THEN
        RAISE EXCEPTION 'app password name % is not 1-64 letters, digits, spaces and ._@+-',
              public.quoted(add_app_password.name) USING ERRCODE = '22023';
    END IF;
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    PERFORM FROM public.users u WHERE u.email = address FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    IF EXISTS (SELECT FROM public.app_passwords a WHERE a.email = address AND a.name = add_app_password.name) THEN
        RAISE EXCEPTION 'mailbox % has an app password named % already', public.quoted(address),
              public.quoted(add_app_password.name) USING ERRCODE = '23505',
              HINT = 'revoke it first, or choose another name';
    END IF;
    LOOP  -- a token the mailbox has already: about one in 10^12 per existing password
        pw := public.app_password_generate();
        EXIT WHEN NOT EXISTS (SELECT FROM public.app_passwords a WHERE a.email = address AND a.token = left(pw, 8));
    END LOOP;
    INSERT INTO public.app_passwords (email, name, token, hash, services)
    VALUES (address, add_app_password.name, left(pw, 8), public.hash_password(pw), svc);
    RETURN pw;
END
$$;
REVOKE ALL ON FUNCTION public.add_app_password(text, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_app_password(text, text, text[]) TO mailadmin, maildomainadmin;

-- app_passwords_list(mailbox) -> (email, name, services, created, last_used)
-- Caller: members of mailadmin, and of maildomainadmin (runner: `mailbook mailbox
-- app-password list`). Runs as mailowner. The app passwords of one mailbox, or with NULL
-- of every mailbox the login manages; never a hash or token. Raises 42501 for a
-- customer's admin asking for a mailbox outside its domains.
CREATE FUNCTION public.app_passwords_list(mailbox text DEFAULT NULL)
RETURNS TABLE (email text, name text, services text[], created timestamptz, last_used timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address constant text := lower(app_passwords_list.mailbox);
BEGIN
    IF address IS NOT NULL THEN
        PERFORM public.require_domain_scope(split_part(address, '@', 2));
    END IF;
    RETURN QUERY
        SELECT a.email, a.name, a.services, a.created, a.last_used
          FROM public.app_passwords a
         WHERE (address IS NULL OR a.email = address)
           AND split_part(a.email, '@', 2) IN (SELECT public.managed_domains())
         ORDER BY a.email, a.name;
END
$$;
REVOKE ALL ON FUNCTION public.app_passwords_list(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.app_passwords_list(text) TO mailadmin, maildomainadmin;

-- revoke_app_password(email, name) -> void
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox app-password revoke`). Runs as mailowner. Deletes it: the
-- next login with it is refused (`mailbook dovecot follow` flushes Dovecot's cache for
-- the mailbox). Raises P0002 when the mailbox has no app password of that name, 42501
-- for a customer's admin outside its domains (before the lookup).
CREATE FUNCTION public.revoke_app_password(email text, name text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address constant text := lower(revoke_app_password.email);
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    DELETE FROM public.app_passwords a WHERE a.email = address AND a.name = revoke_app_password.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % has no app password named %', public.quoted(address),
              public.quoted(revoke_app_password.name) USING ERRCODE = 'P0002';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.revoke_app_password(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.revoke_app_password(text, text) TO mailadmin, maildomainadmin;

-- main_password_allowed(service) -> boolean
-- Caller: Dovecot's password_query (dovecot/dovecot-sql.conf.ext), as mailauth, with
-- %{service}; mailadmin too (what would Dovecot answer?). Runs as mailowner. False when
-- the site requires app passwords for that service (settings.app_password_services):
-- the main password then logs in only to the other services. Never raises; NULL is true
-- (dovecot_service_allowed() refuses unknown names anyway).
CREATE FUNCTION public.main_password_allowed(service text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    required text[];
BEGIN
    SELECT s.app_password_services INTO required FROM public.settings s;
    RETURN NOT coalesce(main_password_allowed.service = ANY (required), false);
END
$$;
REVOKE ALL ON FUNCTION public.main_password_allowed(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.main_password_allowed(text) TO mailauth, mailadmin;

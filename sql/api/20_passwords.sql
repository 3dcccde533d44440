-- Password hashing and verification.

-- hash_password(password) -> text
-- Caller: mailadmin (front-ends that want a hash to store elsewhere) and the API.
-- bcrypt through pgcrypto at the cost in settings.bcrypt_cost, returned in Dovecot's
-- scheme-prefixed form {BLF-CRYPT}$2a$NN$..., which BLF-CRYPT verifies.
-- Raises 22004 for NULL, 22023 for what password_error() refuses: an empty password, one
-- longer than 72 bytes (bcrypt would ignore the rest), one that is itself a hash.
CREATE FUNCTION public.hash_password(password text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cost integer;
BEGIN
    PERFORM public.assert_valid(public.password_error(password));
    SELECT s.bcrypt_cost INTO STRICT cost FROM public.settings s;
    RETURN '{BLF-CRYPT}' || crypto.crypt(password, crypto.gen_salt('bf', cost));
END
$$;
REVOKE ALL ON FUNCTION public.hash_password(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.hash_password(text) TO mailadmin;

-- normalise_password_hash(hash) -> text
-- Caller: the API (add_mailbox_hashed). normalised_password_hash(), or 22023 (without
-- echoing the value, which may be a plaintext given by mistake) when the result is not
-- a hash Dovecot can verify.
CREATE FUNCTION public.normalise_password_hash(hash text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    h text := public.normalised_password_hash(hash);
BEGIN
    PERFORM public.assert_valid(public.password_hash_error(h));
    RETURN h;
END
$$;
REVOKE ALL ON FUNCTION public.normalise_password_hash(text) FROM PUBLIC;

-- password_matches(stored, password) -> boolean
-- Caller: the API (verify_password, change_password); granted to nobody. Whether password
-- gives the stored hash, for the schemes pgcrypto can check: bcrypt with or without
-- {BLF-CRYPT} and any of $2a$ $2b$ $2y$ (pgcrypto only reads $2a$, and silently falls back
-- to DES for the others, so the prefix is rewritten first), the tutorial's bare crypt()
-- output, and MD5-CRYPT. NULL for any other scheme: it cannot say, and never guesses.
CREATE FUNCTION public.password_matches(stored text, password text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scheme text := coalesce(substring(stored FROM '^\{([^}]*)\}'), 'CRYPT');
    body   text := regexp_replace(stored, '^\{[^}]*\}', '');
BEGIN
    IF scheme IN ('BLF-CRYPT', 'CRYPT') AND body ~ '^\$2[abxy]\$' THEN
        body := '$2a$' || substr(body, 5);
    ELSIF NOT (scheme IN ('MD5-CRYPT', 'CRYPT') AND body LIKE '$1$%') THEN
        RETURN NULL;
    END IF;
    RETURN crypto.crypt(password, body) = body;
END
$$;
REVOKE ALL ON FUNCTION public.password_matches(text, text) FROM PUBLIC;

-- password_scheme(stored) -> text
-- Caller: the API; granted to nobody. The {SCHEME} of a stored hash (CRYPT when bare),
-- for messages.
CREATE FUNCTION public.password_scheme(stored text) RETURNS text
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(substring(stored FROM '^\{([^}]*)\}'), 'CRYPT') $$;
REVOKE ALL ON FUNCTION public.password_scheme(text) FROM PUBLIC;

-- verify_password(email, password) -> boolean
-- Caller: the DBA (a superuser or mailowner), not mailadmin: for a help-desk account it
-- was a password oracle (about 22 unaudited guesses a second a session), and provisioning
-- never needs to know a password, only to set one. Checks a password against the stored
-- hash only (not the active flags), with password_matches(). Raises 0A000 for a scheme it
-- cannot check in SQL, never a false "false"; P0002 when the mailbox does not exist.
CREATE FUNCTION public.verify_password(email text, password text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stored  text;
    matches boolean;
BEGIN
    SELECT u.password INTO stored FROM public.users u WHERE u.email = lower(verify_password.email);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(lower(verify_password.email))
              USING ERRCODE = 'P0002';
    END IF;
    IF password IS NULL THEN
        RAISE EXCEPTION 'password must not be NULL' USING ERRCODE = '22004';
    END IF;
    matches := public.password_matches(stored, password);
    IF matches IS NULL THEN
        RAISE EXCEPTION 'cannot verify a % hash in SQL (pgcrypto reads only bcrypt and MD5-CRYPT)',
              public.password_scheme(stored)
              USING ERRCODE = '0A000',
                    HINT = 'check it with `doveadm auth test` instead';
    END IF;
    RETURN matches;
END
$$;
REVOKE ALL ON FUNCTION public.verify_password(text, text) FROM PUBLIC;

-- Password expiry (migration 0215): a maximum password age per domain or mailbox, in
-- days (users.password_max_age wins over transports.password_max_age; 0 on a mailbox:
-- never; NULL: its domain's, on a domain: never), counted from users.password_changed,
-- which a trigger keeps up to date whichever path sets a password. Dovecot's main passdb
-- (dovecot/dovecot-sql.conf.ext) asks password_expiry_check() on every login: past the
-- age, for the services in settings.password_expiry_services, Dovecot gets the nologin
-- and reason fields, which it acts on only after the password matched (a wrong password
-- stays "authentication failed" and tells nothing), except from
-- settings.password_expiry_exempt_networks: the webmail's, where the user logs in and
-- changes the password (change_password(), which resets the age). App passwords (the
-- second passdb) do not expire with the main one. Changes are audited (audit_update names
-- the column) and flushed from Dovecot's auth cache by `mailbook dovecot follow`.

-- password_expiry_check(changed, mailbox_days, domain_days, service, remote_ip) -> (login, nologin, reason)
-- Caller: Dovecot's password_query (dovecot/dovecot-sql.conf.ext), as mailauth, with the
-- row's password_changed and the two ages, %{service} and the client's address (%r, ''
-- when Dovecot knows none, as from doveadm without rip). Runs as mailowner. One row:
-- (true, NULL, NULL) unless the password is past its age, the service is one of
-- settings.password_expiry_services and the client is not in
-- settings.password_expiry_exempt_networks; then (true, 'Y', the settings' reason):
-- Dovecot's login processes (IMAP, POP3, submission, ManageSieve) refuse the login with
-- that reason once the password matched. Postfix's SASL (smtp) ignores nologin, so for
-- smtp the answer is (false, NULL, NULL): no row, "authentication failed" (and Dovecot
-- asks the app-password passdb). Never raises: an address it cannot parse is no
-- exempt network.
CREATE FUNCTION public.password_expiry_check(changed timestamptz, mailbox_days integer, domain_days integer,
                                             service text, remote_ip text,
                                             OUT login boolean, OUT nologin text, OUT reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_days constant integer := CASE WHEN mailbox_days = 0 THEN NULL ELSE coalesce(mailbox_days, domain_days) END;
    s    public.settings;
    ip   inet;
BEGIN
    login := true;
    IF max_days IS NULL OR changed IS NULL OR changed + max_days * interval '1 day' > now() THEN
        RETURN;
    END IF;
    SELECT * INTO STRICT s FROM public.settings;
    IF NOT coalesce(password_expiry_check.service = ANY (s.password_expiry_services), false) THEN
        RETURN;
    END IF;
    IF remote_ip ~ '^[0-9A-Fa-f.:]{2,45}$' THEN
        BEGIN
            ip := remote_ip::inet;
        EXCEPTION WHEN invalid_text_representation THEN
            ip := NULL;
        END;
        IF ip <<= '::ffff:0.0.0.0/96'::inet THEN  -- an IPv4 client of an IPv6 listener
            ip := split_part(host(ip), ':', 4)::inet;
        END IF;
        IF ip <<= ANY (s.password_expiry_exempt_networks::inet[]) THEN
            RETURN;
        END IF;
    END IF;
    IF password_expiry_check.service = 'smtp' THEN
        login := false;
        RETURN;
    END IF;
    nologin := 'Y';
    reason := s.password_expiry_reason;
END
$$;
REVOKE ALL ON FUNCTION public.password_expiry_check(timestamptz, integer, integer, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.password_expiry_check(timestamptz, integer, integer, text, text) TO mailauth, mailadmin;

-- set_password_max_age(address_or_domain, days) -> integer (the age stored)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox password-age set`, `mailbook domain password-age set`).
-- Runs as mailowner. address_or_domain is a mailbox (it contains @) or a hosted domain.
-- A mailbox's age replaces its domain's; 0 on a mailbox: its password never expires,
-- whatever the domain says. Raises 22023 for days outside 1..36500 (0..36500 for a
-- mailbox) or an alias domain (its mailboxes are the target's), 22004 for NULLs, P0002
-- for an unknown mailbox or a domain not hosted, 42501 for a customer's admin outside
-- its domains (before the lookup).
CREATE FUNCTION public.set_password_max_age(address_or_domain text, days integer) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target constant text := lower(set_password_max_age.address_or_domain);
    mailbox constant boolean := position('@' IN target) > 0;
    lowest constant integer := CASE WHEN mailbox THEN 0 ELSE 1 END;
    target_of text;
BEGIN
    IF target IS NULL OR set_password_max_age.days IS NULL THEN
        RAISE EXCEPTION 'address_or_domain and days must not be NULL' USING ERRCODE = '22004',
              HINT = 'clear_password_max_age() removes a maximum age';
    END IF;
    IF set_password_max_age.days NOT BETWEEN lowest AND 36500 THEN
        RAISE EXCEPTION 'maximum password age % is not a number of days from % to 36500',
              set_password_max_age.days, lowest USING ERRCODE = '22023',
              HINT = CASE WHEN mailbox THEN '0 means never, whatever the domain says'
                          ELSE 'to let a domain''s passwords never expire, clear its maximum age' END;
    END IF;
    IF mailbox THEN
        PERFORM public.require_domain_scope(split_part(target, '@', 2));
        UPDATE public.users u SET password_max_age = set_password_max_age.days, modified = now() WHERE u.email = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'mailbox % does not exist', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
    ELSE
        PERFORM public.require_domain_scope(target);
        SELECT t.alias_of INTO target_of FROM public.transports t WHERE t.domain = target;
        IF target_of IS NOT NULL THEN
            RAISE EXCEPTION 'domain % is an alias domain of %: its mailboxes are those of %',
                  public.quoted(target), public.quoted(target_of), public.quoted(target_of) USING ERRCODE = '22023',
                  HINT = 'set the maximum age of the domain it is an alias of';
        END IF;
        UPDATE public.transports t SET password_max_age = set_password_max_age.days, modified = now() WHERE t.domain = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'domain % is not hosted here', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
    END IF;
    RETURN set_password_max_age.days;
END
$$;
REVOKE ALL ON FUNCTION public.set_password_max_age(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_password_max_age(text, integer) TO mailadmin, maildomainadmin;

-- clear_password_max_age(address_or_domain) -> boolean (whether an age was set)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox password-age clear`, `mailbook domain password-age clear`).
-- Runs as mailowner. A mailbox then follows its domain's age; a domain's mailboxes
-- without an age of their own never expire. Raises P0002 for an unknown mailbox or a
-- domain not hosted, 22004 for NULL, 42501 for a customer's admin outside its domains
-- (before the lookup).
CREATE FUNCTION public.clear_password_max_age(address_or_domain text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN public.clear_account_setting(clear_password_max_age.address_or_domain, 'password_max_age');  -- 10_helpers.sql
END
$$;
REVOKE ALL ON FUNCTION public.clear_password_max_age(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.clear_password_max_age(text) TO mailadmin, maildomainadmin;

-- password_max_age(address_or_domain) -> (name, days, domain_days, effective, password_changed, expires)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox password-age show`, `mailbook domain password-age show`).
-- Runs as mailowner. One row: the mailbox's or domain's own age, for a mailbox its
-- domain's, effective (the age Dovecot enforces, NULL: never), and for a mailbox when its
-- password was set and when it expires (NULL: never). Raises P0002 for an unknown mailbox
-- or a domain not hosted, 22004 for NULL, 42501 for a customer's admin outside its
-- domains (before the lookup).
CREATE FUNCTION public.password_max_age(address_or_domain text)
RETURNS TABLE (name text, days integer, domain_days integer, effective integer,
               password_changed timestamptz, expires timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target constant text := lower(password_max_age.address_or_domain);
    own integer;
    domain_age integer;
    changed timestamptz;
    eff integer;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'address_or_domain must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF position('@' IN target) > 0 THEN
        PERFORM public.require_domain_scope(split_part(target, '@', 2));
        SELECT u.password_max_age, t.password_max_age, u.password_changed INTO own, domain_age, changed
          FROM public.users u JOIN public.transports t ON t.domain = u.domain WHERE u.email = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'mailbox % does not exist', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
        eff := CASE WHEN own = 0 THEN NULL ELSE coalesce(own, domain_age) END;
    ELSE
        PERFORM public.require_domain_scope(target);
        SELECT t.password_max_age INTO own FROM public.transports t WHERE t.domain = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'domain % is not hosted here', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
        eff := own;
    END IF;
    RETURN QUERY SELECT target, own, domain_age, eff, changed, changed + eff * interval '1 day';
END
$$;
REVOKE ALL ON FUNCTION public.password_max_age(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.password_max_age(text) TO mailadmin, maildomainadmin;

-- passwords_expiring(within_days) -> table(email, password_changed, max_age, expires, expired)
-- Caller: members of mailadmin (every mailbox), and of maildomainadmin (its domains'
-- mailboxes only, managed_domains()) (runner: `mailbook mailbox expiring --days N`). Runs
-- as mailowner. The active mailboxes of active domains whose password has expired or
-- expires within within_days days, the soonest first (expired ones first of all).
-- Raises 22004 for NULL, 22023 for within_days outside 0..36500.
CREATE FUNCTION public.passwords_expiring(within_days integer DEFAULT 14)
RETURNS TABLE (email text, password_changed timestamptz, max_age integer, expires timestamptz, expired boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF within_days IS NULL THEN
        RAISE EXCEPTION 'within_days must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF within_days NOT BETWEEN 0 AND 36500 THEN
        RAISE EXCEPTION 'within_days % is not a number of days from 0 to 36500', within_days USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
        SELECT a.email, a.password_changed, a.age, a.expires, a.expires <= now()
          FROM (SELECT u.email, u.password_changed,
                       CASE WHEN u.password_max_age = 0 THEN NULL
                            ELSE coalesce(u.password_max_age, t.password_max_age) END AS age,
                       u.password_changed + CASE WHEN u.password_max_age = 0 THEN NULL
                            ELSE coalesce(u.password_max_age, t.password_max_age) END * interval '1 day' AS expires
                  FROM public.users u JOIN public.transports t ON t.domain = u.domain
                 WHERE u.active AND t.active
                   AND u.domain IN (SELECT public.managed_domains())) a
         WHERE a.expires <= now() + within_days * interval '1 day'
         ORDER BY a.expires, a.email;
END
$$;
REVOKE ALL ON FUNCTION public.passwords_expiring(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.passwords_expiring(integer) TO mailadmin, maildomainadmin;

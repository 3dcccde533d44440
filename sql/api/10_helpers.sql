-- Helpers the API functions share. SECURITY DEFINER like the rest of the API (so they
-- are dropped and re-created with it) but granted to nobody: only the API calls them.

-- assert_valid(problem): raise a *_error() sentence as an error. NULL means no problem.
-- SQLSTATE 22004 (null_value_not_allowed) for a missing value, else 22023
-- (invalid_parameter_value).
CREATE FUNCTION public.assert_valid(problem text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem,
            ERRCODE = CASE WHEN problem LIKE '%must not be NULL' THEN '22004' ELSE '22023' END;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.assert_valid(text) FROM PUBLIC;

-- assert_hosted(domain): the domain must be a row in transports.
CREATE FUNCTION public.assert_hosted(domain text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM public.transports t WHERE t.domain = assert_hosted.domain) THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(assert_hosted.domain)
              USING ERRCODE = '23503',
                    HINT = format('call add_domain(%L) first', assert_hosted.domain);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.assert_hosted(text) FROM PUBLIC;

-- clear_account_setting(address_or_domain, setting) -> boolean (whether it was set)
-- Caller: clear_login_networks() and clear_password_max_age() only. setting is one of
-- the per-mailbox-or-domain columns both tables have (login_networks, password_max_age):
-- with an @ the mailbox's (users), else the domain's (transports) becomes NULL, the row
-- locked first. Raises 22004 for NULL, 42501 for a customer's admin outside its domains
-- (before the lookup, so nothing tells what exists there), P0002 for an unknown mailbox
-- or a domain not hosted.
CREATE FUNCTION public.clear_account_setting(address_or_domain text, setting text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target constant text := lower(clear_account_setting.address_or_domain);
    mailbox constant boolean := position('@' IN target) > 0;
    tbl constant text := CASE WHEN mailbox THEN 'users' ELSE 'transports' END;
    key constant text := CASE WHEN mailbox THEN 'email' ELSE 'domain' END;
    had boolean;
BEGIN
    IF setting IS NULL OR setting NOT IN ('login_networks', 'password_max_age') THEN
        RAISE EXCEPTION 'no account setting %', public.quoted(setting) USING ERRCODE = '22023';
    END IF;
    IF target IS NULL THEN
        RAISE EXCEPTION 'address_or_domain must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM public.require_domain_scope(CASE WHEN mailbox THEN split_part(target, '@', 2) ELSE target END);
    EXECUTE format('SELECT %I IS NOT NULL FROM public.%I WHERE %I = $1 FOR UPDATE', setting, tbl, key)
       INTO had USING target;
    IF had IS NULL AND mailbox THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(target) USING ERRCODE = 'P0002';
    ELSIF had IS NULL THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(target) USING ERRCODE = 'P0002';
    END IF;
    IF had THEN
        EXECUTE format('UPDATE public.%I SET %I = NULL, modified = now() WHERE %I = $1', tbl, setting, key)
          USING target;
    END IF;
    RETURN had;
END
$$;
REVOKE ALL ON FUNCTION public.clear_account_setting(text, text) FROM PUBLIC;

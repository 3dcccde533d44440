-- Login networks (migration 0213, columns login_networks of users and transports): the
-- networks a mailbox may log in from, per mailbox or for a whole domain. Dovecot enforces
-- them: both passdb queries (dovecot/dovecot-sql.conf.ext and
-- dovecot-sql-app-passwords.conf.ext) return them as allow_nets, the mailbox's own list
-- if it has one, else its domain's, NULL (from anywhere) when neither has one. Postfix's
-- SASL logins (smtp, submission) ask the same passdbs; Roundcube logs in over IMAP from
-- the webmail host, so a restricted mailbox that uses webmail must list that host.
-- Changes are audited (audit_update names the column) and flushed from Dovecot's auth
-- cache by `mailbook dovecot follow` (migration 0213's triggers).

-- login_networks_parse(networks) -> cidr[] (sorted, without repeats)
-- Caller: set_login_networks(); granted to nobody. Raises 22004 for a NULL list or
-- element, 22023 naming the first value that is not a network in CIDR notation
-- (192.0.2.0/24, 2001:db8::/32, or a bare address for itself) or has host bits set
-- (192.0.2.1/24: which was meant, the network or the address?), and for an empty list
-- (Dovecot would refuse every login: disable the mailbox instead) or more than 64.
CREATE FUNCTION public.login_networks_parse(networks text[]) RETURNS cidr[]
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    item   text;
    parsed cidr[] := '{}';
BEGIN
    IF networks IS NULL OR array_position(networks, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'networks must not be NULL' USING ERRCODE = '22004',
              HINT = 'clear_login_networks() lets the mailbox or domain log in from anywhere again';
    END IF;
    FOREACH item IN ARRAY networks LOOP
        BEGIN
            parsed := parsed || btrim(item)::cidr;
        EXCEPTION WHEN invalid_text_representation OR invalid_binary_representation THEN
            RAISE EXCEPTION 'login network % is not a network in CIDR notation (192.0.2.0/24, 2001:db8::/32) without host bits',
                  public.quoted(item) USING ERRCODE = '22023',
                  HINT = 'a single address is 192.0.2.7 or 192.0.2.7/32; 192.0.2.7/24 has host bits set: write 192.0.2.0/24';
        END;
    END LOOP;
    parsed := ARRAY(SELECT DISTINCT n FROM unnest(parsed) AS n ORDER BY n);
    IF cardinality(parsed) = 0 THEN
        RAISE EXCEPTION 'a list of login networks needs at least one network' USING ERRCODE = '22023',
              HINT = 'to refuse every login disable the mailbox or domain; to allow any network clear the list';
    END IF;
    IF cardinality(parsed) > 64 THEN
        RAISE EXCEPTION 'at most 64 login networks, not %', cardinality(parsed) USING ERRCODE = '22023';
    END IF;
    RETURN parsed;
END
$$;
REVOKE ALL ON FUNCTION public.login_networks_parse(text[]) FROM PUBLIC;

-- set_login_networks(address_or_domain, networks) -> cidr[] (the list stored)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox networks set`, `mailbook domain networks set`). Runs as
-- mailowner. address_or_domain is a mailbox (it contains @) or a hosted domain; the list
-- replaces the one it had. A mailbox's list replaces its domain's at login (it is not
-- added to it). Raises 22023 for a bad network (login_networks_parse()) or an alias
-- domain (its mailboxes log in as the target's), 22004 for NULLs, P0002 for an unknown
-- mailbox or a domain not hosted, 42501 for a customer's admin outside its domains
-- (before the lookup).
CREATE FUNCTION public.set_login_networks(address_or_domain text, networks text[]) RETURNS cidr[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target constant text := lower(set_login_networks.address_or_domain);
    parsed cidr[];
    target_of text;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'address_or_domain must not be NULL' USING ERRCODE = '22004';
    END IF;
    parsed := public.login_networks_parse(set_login_networks.networks);
    IF position('@' IN target) > 0 THEN
        PERFORM public.require_domain_scope(split_part(target, '@', 2));
        UPDATE public.users u SET login_networks = parsed, modified = now() WHERE u.email = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'mailbox % does not exist', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
    ELSE
        PERFORM public.require_domain_scope(target);
        SELECT t.alias_of INTO target_of FROM public.transports t WHERE t.domain = target;
        IF target_of IS NOT NULL THEN
            RAISE EXCEPTION 'domain % is an alias domain of %: its mailboxes log in with % addresses',
                  public.quoted(target), public.quoted(target_of), public.quoted(target_of) USING ERRCODE = '22023',
                  HINT = 'set the networks of the domain it is an alias of';
        END IF;
        UPDATE public.transports t SET login_networks = parsed, modified = now() WHERE t.domain = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'domain % is not hosted here', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
    END IF;
    RETURN parsed;
END
$$;
REVOKE ALL ON FUNCTION public.set_login_networks(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_login_networks(text, text[]) TO mailadmin, maildomainadmin;

-- clear_login_networks(address_or_domain) -> boolean (whether a list was set)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox networks clear`, `mailbook domain networks clear`). Runs as
-- mailowner. A mailbox then logs in from its domain's networks, or from anywhere; a
-- domain's mailboxes without a list of their own from anywhere. Raises P0002 for an
-- unknown mailbox or a domain not hosted, 22004 for NULL, 42501 for a customer's admin
-- outside its domains (before the lookup).
CREATE FUNCTION public.clear_login_networks(address_or_domain text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN public.clear_account_setting(clear_login_networks.address_or_domain, 'login_networks');  -- 10_helpers.sql
END
$$;
REVOKE ALL ON FUNCTION public.clear_login_networks(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.clear_login_networks(text) TO mailadmin, maildomainadmin;

-- login_networks(address_or_domain) -> (name, networks, domain_networks, effective)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox networks show`, `mailbook domain networks show`). Runs as
-- mailowner. One row: the mailbox's or domain's own list, for a mailbox its domain's,
-- and effective, the list Dovecot enforces (NULL: from anywhere), each as text in CIDR
-- notation. Raises P0002 for an unknown mailbox or a domain not hosted, 22004 for NULL,
-- 42501 for a customer's admin outside its domains (before the lookup).
CREATE FUNCTION public.login_networks(address_or_domain text)
RETURNS TABLE (name text, networks text[], domain_networks text[], effective text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target constant text := lower(login_networks.address_or_domain);
    own cidr[];
    domain_list cidr[];
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'address_or_domain must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF position('@' IN target) > 0 THEN
        PERFORM public.require_domain_scope(split_part(target, '@', 2));
        SELECT u.login_networks, t.login_networks INTO own, domain_list
          FROM public.users u JOIN public.transports t ON t.domain = u.domain WHERE u.email = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'mailbox % does not exist', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
    ELSE
        PERFORM public.require_domain_scope(target);
        SELECT t.login_networks INTO own FROM public.transports t WHERE t.domain = target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'domain % is not hosted here', public.quoted(target) USING ERRCODE = 'P0002';
        END IF;
    END IF;
    RETURN QUERY SELECT target, own::text[], domain_list::text[], coalesce(own, domain_list)::text[];
END
$$;
REVOKE ALL ON FUNCTION public.login_networks(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.login_networks(text) TO mailadmin, maildomainadmin;

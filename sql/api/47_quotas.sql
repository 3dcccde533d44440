-- Quotas and per-domain caps (0020). The caps themselves are enforced by the tables'
-- triggers (refuse_over_domain_limits), for every way a row gets in.

-- set_mailbox_quota(email, quota_bytes, quota_messages) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook mailbox quota`). Sets both limits;
-- NULL lifts a limit, so to change one and keep the other pass the stored one:
-- SELECT set_mailbox_quota(email, quota_bytes, 100000) FROM mailboxes WHERE email = '...'.
-- Dovecot reads both as the mailbox's quota_rule at its next login or delivery.
-- Raises P0002 for an unknown mailbox, 22023 for a limit that is not positive, 23514
-- if the domain's total quota cap would be exceeded.
CREATE FUNCTION public.set_mailbox_quota(email text, quota_bytes bigint, quota_messages bigint DEFAULT NULL)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(set_mailbox_quota.email);
    result  public.mailboxes;
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    IF quota_bytes <= 0 OR quota_messages <= 0 THEN
        RAISE EXCEPTION 'a quota must be positive (NULL for none), not % bytes and % messages',
              coalesce(quota_bytes::text, 'NULL'), coalesce(quota_messages::text, 'NULL')
              USING ERRCODE = '22023';
    END IF;
    UPDATE public.users u
       SET quota_bytes = set_mailbox_quota.quota_bytes, quota_messages = set_mailbox_quota.quota_messages,
           modified = now()
     WHERE u.email = address;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = address;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_mailbox_quota(text, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_mailbox_quota(text, bigint, bigint) TO mailadmin, maildomainadmin;

-- set_domain_limits(domain, max_mailboxes, max_aliases, max_quota_bytes) -> transports
-- Caller: members of mailadmin, and a reseller in its scope (35_scopes.sql) (runner:
-- `mailbook domain limits`). NULL: no cap. The caps bind additions from then on; a
-- domain already above one keeps what it has. The largest mailbox quota is
-- set_mailbox_quota_cap()'s. Raises 42501 for a scoped admin that is not a reseller or a
-- domain outside its scope, P0002 if the domain is not hosted, 22023 for a negative cap
-- (or a zero total quota).
CREATE FUNCTION public.set_domain_limits(domain text, max_mailboxes integer, max_aliases integer,
                                         max_quota_bytes bigint)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name   text := lower(set_domain_limits.domain);
    result public.transports;
BEGIN
    PERFORM public.require_reseller('cap domains');
    PERFORM public.require_domain_scope(name);
    IF max_mailboxes < 0 OR max_aliases < 0 OR max_quota_bytes <= 0 THEN
        RAISE EXCEPTION 'caps must not be negative and a total quota must be positive (NULL for no cap), not % mailboxes, % aliases, % bytes',
              coalesce(max_mailboxes::text, 'NULL'), coalesce(max_aliases::text, 'NULL'),
              coalesce(max_quota_bytes::text, 'NULL')
              USING ERRCODE = '22023';
    END IF;
    UPDATE public.transports t
       SET max_mailboxes = set_domain_limits.max_mailboxes, max_aliases = set_domain_limits.max_aliases,
           max_quota_bytes = set_domain_limits.max_quota_bytes, modified = now()
     WHERE t.domain = name
    RETURNING * INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(name) USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_domain_limits(text, integer, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_domain_limits(text, integer, integer, bigint) TO mailadmin, maildomainadmin;

-- set_mailbox_quota_cap(domain, max_mailbox_quota_bytes) -> transports
-- Caller: members of mailadmin, and a reseller in its scope (runner: `mailbook domain
-- limits --mailbox-quota-bytes`). The largest byte quota one mailbox of the domain may
-- have; under it a mailbox without a quota is refused too (0208's trigger). NULL: no cap.
-- Like the other caps it binds additions and changes from then on. Raises 42501 for a
-- scoped admin that is not a reseller or a domain outside its scope, P0002 if the domain
-- is not hosted, 22023 for a cap that is not positive.
CREATE FUNCTION public.set_mailbox_quota_cap(domain text, max_mailbox_quota_bytes bigint)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name   text := lower(set_mailbox_quota_cap.domain);
    result public.transports;
BEGIN
    PERFORM public.require_reseller('cap domains');
    PERFORM public.require_domain_scope(name);
    IF max_mailbox_quota_bytes <= 0 THEN
        RAISE EXCEPTION 'a largest mailbox quota must be positive (NULL for no cap), not % bytes', max_mailbox_quota_bytes
              USING ERRCODE = '22023';
    END IF;
    UPDATE public.transports t
       SET max_mailbox_quota_bytes = set_mailbox_quota_cap.max_mailbox_quota_bytes, modified = now()
     WHERE t.domain = name
    RETURNING * INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(name) USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_mailbox_quota_cap(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_mailbox_quota_cap(text, bigint) TO mailadmin, maildomainadmin;

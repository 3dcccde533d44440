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
-- Caller: members of mailadmin (runner: `mailbook domain limits`). NULL: no cap. The
-- caps bind additions from then on; a domain already above one keeps what it has.
-- Raises P0002 if the domain is not hosted, 22023 for a negative cap (or a zero
-- total quota).
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
GRANT EXECUTE ON FUNCTION public.set_domain_limits(text, integer, integer, bigint) TO mailadmin;

-- Send-as grants (table send_as): which extra envelope senders a mailbox may use when it
-- submits mail. Postfix reads them through postfix_sender_logins() (70_lookups.sql).

-- allow_send_as(login, address) -> send_as
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook sendas allow`). Runs as mailowner.
-- Lets the mailbox `login` send as `address`, which may be any valid address, hosted
-- here or not; for a customer's admin both must be in its domains (42501 naming the
-- domain otherwise: a customer may not let its mailbox send as another customer's
-- address, nor as an outside one). Raises 23503 if login is no mailbox, 23505 if the
-- grant exists, and 22004/22023 for invalid addresses, like the rest of the API.
CREATE FUNCTION public.allow_send_as(login text, address text) RETURNS public.send_as
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l      text := lower(allow_send_as.login);
    a      text := lower(allow_send_as.address);
    result public.send_as;
BEGIN
    PERFORM public.assert_valid(public.address_error(l));
    PERFORM public.assert_valid(public.address_error(a));
    PERFORM public.require_domain_scope(split_part(l, '@', 2));
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    -- FOR SHARE: a concurrent remove_mailbox waits, so no grant outlives its mailbox
    PERFORM FROM public.users u WHERE u.email = l FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'login % is no mailbox', public.quoted(l)
              USING ERRCODE = '23503',
                    HINT = 'a send-as grant belongs to a mailbox: add_mailbox() first';
    END IF;
    INSERT INTO public.send_as (login, address) VALUES (l, a) RETURNING * INTO result;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION '% may already send as %', public.quoted(l), public.quoted(a)
          USING ERRCODE = '23505';
END
$$;
REVOKE ALL ON FUNCTION public.allow_send_as(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.allow_send_as(text, text) TO mailadmin, maildomainadmin;

-- disallow_send_as(login, address) -> integer (grants removed)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook sendas disallow`). Without an address, every grant of that login
-- goes. Raises P0002 when nothing matched. The mailbox's own address and its aliases
-- are not grants and cannot be taken away here. A customer's admin names only
-- addresses in its domains, the login's and the address's (42501 otherwise, checked
-- before anything is looked up: no answer about another customer's grants).
CREATE FUNCTION public.disallow_send_as(login text, address text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    l       text := lower(disallow_send_as.login);
    a       text := lower(disallow_send_as.address);
    removed integer;
BEGIN
    PERFORM public.require_domain_scope(split_part(l, '@', 2));
    IF a IS NOT NULL THEN
        PERFORM public.require_domain_scope(split_part(a, '@', 2));
    END IF;
    DELETE FROM public.send_as s WHERE s.login = l AND (a IS NULL OR s.address = a);
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed = 0 THEN
        RAISE EXCEPTION '% has no send-as grant%', public.quoted(l),
              CASE WHEN a IS NULL THEN '' ELSE ' for ' || public.quoted(a) END
              USING ERRCODE = 'P0002',
                    HINT = 'a mailbox''s own address and its aliases are not grants; list them with `mailbook sendas list`';
    END IF;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION public.disallow_send_as(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.disallow_send_as(text, text) TO mailadmin, maildomainadmin;

-- my_send_as() -> SETOF send_as
-- Caller: members of maildomainadmin (runner: `mailbook sendas list`; and mailadmin:
-- every grant). The send-as grants of the mailboxes in the domains the login manages:
-- a customer's admin may not read the table itself. Runs as mailowner.
CREATE FUNCTION public.my_send_as() RETURNS SETOF public.send_as
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.* FROM public.send_as s
     WHERE split_part(s.login, '@', 2) IN (SELECT public.managed_domains())
     ORDER BY s.login, s.address
$$;
REVOKE ALL ON FUNCTION public.my_send_as() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_send_as() TO mailadmin, maildomainadmin;

-- who_may_send_as(address) -> SETOF text
-- Caller: members of mailadmin and of maildomainadmin (runner: `mailbook sendas who`).
-- The logins Postfix lets send as address: what postfix_sender_logins() answers
-- sender-login.cf. Raises 22004/22023 for an invalid address, and for a customer's admin
-- 42501 unless the address's domain is its own (checked first: no answer about another
-- customer's senders). Runs as mailowner.
CREATE FUNCTION public.who_may_send_as(address text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a constant text := lower(who_may_send_as.address);
BEGIN
    PERFORM public.assert_valid(public.address_error(a));
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    RETURN QUERY SELECT DISTINCT l FROM public.postfix_sender_logins(split_part(a, '@', 1), split_part(a, '@', 2)) AS l
                 ORDER BY 1;
END
$$;
REVOKE ALL ON FUNCTION public.who_may_send_as(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.who_may_send_as(text) TO mailadmin, maildomainadmin;

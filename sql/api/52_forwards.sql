-- Forwarding (issue 33, item 7): the alias rules of 50_aliases.sql under the names an
-- admin looks for. A forward of foo@example.com to bar@elsewhere.example is the alias row
-- (foo@example.com, bar@elsewhere.example); "keep a copy" is one more row, the mailbox
-- itself as a destination, so Postfix delivers to the mailbox and forwards too. Nothing
-- new is stored: psql users and `mailbook alias list` see the same rows.

-- set_forward(email, destination, keep_copy) -> SETOF aliases (the address's rows now)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook forward set`). Runs as mailowner. Replaces every destination of
-- email with destination, and with keep_copy also email itself (it must then be a
-- mailbox: an alias to itself that is no mailbox would bounce). add_alias()'s rules hold
-- for the destination. Raises 22004 for NULLs, 22023 for an invalid address, a forward
-- to itself, or keep_copy for an address that is no mailbox, 23503 as add_alias(),
-- 42501 for a customer's admin outside its domains (before the lookup).
CREATE FUNCTION public.set_forward(email text, destination text, keep_copy boolean DEFAULT false)
RETURNS SETOF public.aliases
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a   constant text := lower(set_forward.email);
    dst constant text := lower(set_forward.destination);
BEGIN
    IF a IS NULL OR dst IS NULL OR keep_copy IS NULL THEN
        RAISE EXCEPTION 'email, destination and keep_copy must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM public.assert_valid(public.alias_error(a));
    PERFORM public.assert_valid(public.address_error(dst));
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    IF dst = a THEN
        RAISE EXCEPTION '% cannot forward to itself', public.quoted(a) USING ERRCODE = '22023',
              HINT = 'keep_copy keeps a copy in the mailbox; clear_forward() ends a forward';
    END IF;
    IF keep_copy AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = a) THEN
        RAISE EXCEPTION '% is no mailbox: there is nowhere to keep a copy', public.quoted(a) USING ERRCODE = '22023';
    END IF;
    DELETE FROM public.aliases x WHERE x.alias = a;
    PERFORM public.add_alias(a, dst);
    IF keep_copy THEN
        PERFORM public.add_alias(a, a);
    END IF;
    RETURN QUERY SELECT x.* FROM public.aliases x WHERE x.alias = a ORDER BY x.email;
END
$$;
REVOKE ALL ON FUNCTION public.set_forward(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_forward(text, text, boolean) TO mailadmin, maildomainadmin;

-- forward_of(email) -> (address, destinations, keep_copy)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (runner: `mailbook
-- forward show`). Runs as mailowner. One row when email has alias rows: the destinations
-- other than itself (sorted), and whether it keeps a copy (a row to itself); no row when
-- mail to it is not forwarded. Raises 42501 for a customer's admin outside its domains.
CREATE FUNCTION public.forward_of(email text)
RETURNS TABLE (address text, destinations text[], keep_copy boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a constant text := lower(forward_of.email);
BEGIN
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    RETURN QUERY
        SELECT a,
               coalesce(array_agg(x.email ORDER BY x.email) FILTER (WHERE x.email <> a), '{}'),
               bool_or(x.email = a)
          FROM public.aliases x
         WHERE x.alias = a
        HAVING count(*) > 0;
END
$$;
REVOKE ALL ON FUNCTION public.forward_of(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.forward_of(text) TO mailadmin, maildomainadmin;

-- clear_forward(email) -> integer (alias rows removed)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (runner: `mailbook
-- forward clear`). Runs as mailowner. Removes every destination of email (its copy to
-- itself included): mail to a mailbox is delivered to it alone again. Raises P0002 when
-- email forwards nowhere, 42501 for a customer's admin outside its domains.
CREATE FUNCTION public.clear_forward(email text) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a constant text := lower(clear_forward.email);
    removed integer;
BEGIN
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    DELETE FROM public.aliases x WHERE x.alias = a;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed = 0 THEN
        RAISE EXCEPTION '% is not forwarded', public.quoted(a) USING ERRCODE = 'P0002';
    END IF;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION public.clear_forward(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.clear_forward(text) TO mailadmin, maildomainadmin;

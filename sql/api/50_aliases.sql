-- Aliases and forwards (table aliases). One row per (alias, destination).

-- add_alias(alias, destination) -> aliases
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook alias add`). Runs as mailowner.
-- Adds one destination to an alias; call it again for more. The alias must be in a
-- hosted domain (23503), not an alias domain. "@example.com" is the domain's catch-all:
-- it receives mail for the local parts that are neither a mailbox nor an alias. A
-- destination in a domain delivered here must be an existing mailbox or alias (23503):
-- otherwise every message to the alias would bounce. One in a relay (backup-MX) domain is
-- passed on to that domain's next hop, which alone knows its addresses: accepted like any
-- address elsewhere. Raises 23505 if the alias already forwards there, 22004/22023 for
-- invalid addresses.
CREATE FUNCTION public.add_alias(alias text, destination text) RETURNS public.aliases
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a      text := lower(add_alias.alias);
    dst    text := lower(add_alias.destination);
    result public.aliases;
BEGIN
    PERFORM public.assert_valid(public.alias_error(a));
    PERFORM public.assert_valid(public.address_error(dst));
    -- the alias must be the admin's; its destination may be anywhere, as a forward to
    -- any outside address may (another customer's address included: mail to it is no secret)
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    PERFORM public.assert_hosted(split_part(a, '@', 2));
    IF EXISTS (SELECT FROM public.transports t
                WHERE t.domain = split_part(dst, '@', 2) AND NOT public.is_relay_transport(t.transport))
       AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = dst)
       AND NOT EXISTS (SELECT FROM public.aliases x WHERE x.alias = dst) THEN
        RAISE EXCEPTION 'destination % is in a domain hosted here but is no mailbox or alias', public.quoted(dst)
              USING ERRCODE = '23503',
                    HINT = format('add the mailbox first: add_mailbox(%L, ...)', dst);
    END IF;
    INSERT INTO public.aliases (alias, email) VALUES (a, dst) RETURNING * INTO result;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'alias % already forwards to %', public.quoted(a), public.quoted(dst)
          USING ERRCODE = '23505';
END
$$;
REVOKE ALL ON FUNCTION public.add_alias(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_alias(text, text) TO mailadmin, maildomainadmin;

-- remove_alias(alias, destination) -> integer (rows removed)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook alias remove`). Without a destination
-- the alias goes entirely. Raises P0002 when nothing matched.
CREATE FUNCTION public.remove_alias(alias text, destination text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    a       text := lower(remove_alias.alias);
    dst     text := lower(remove_alias.destination);
    removed integer;
BEGIN
    PERFORM public.require_domain_scope(split_part(a, '@', 2));
    DELETE FROM public.aliases x WHERE x.alias = a AND (dst IS NULL OR x.email = dst);
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed = 0 THEN
        RAISE EXCEPTION 'alias % does not exist%', public.quoted(a),
              CASE WHEN dst IS NULL THEN '' ELSE ' with destination ' || public.quoted(dst) END
              USING ERRCODE = 'P0002';
    END IF;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION public.remove_alias(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remove_alias(text, text) TO mailadmin, maildomainadmin;

-- my_aliases() -> SETOF aliases
-- Caller: members of maildomainadmin (runner: `mailbook alias list`; and mailadmin:
-- every alias). The aliases table, narrowed to the domains the login manages (its alias
-- domains included): a customer's admin may not read the table itself. Runs as mailowner.
CREATE FUNCTION public.my_aliases() RETURNS SETOF public.aliases
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.* FROM public.aliases a WHERE a.domain IN (SELECT public.managed_domains()) ORDER BY a.alias, a.email
$$;
REVOKE ALL ON FUNCTION public.my_aliases() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_aliases() TO mailadmin, maildomainadmin;

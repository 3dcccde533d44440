-- Hosted domains (table transports).

-- add_domain(domain, transport, gid) -> transports
-- Caller: members of mailadmin (runner: `mailbook domain add`). Runs as mailowner.
-- Lower-cases the name. Raises 22023 for an invalid name, transport or gid, 23505 if
-- the domain is already hosted.
CREATE FUNCTION public.add_domain(domain text, transport text DEFAULT 'virtual:',
                                  gid integer DEFAULT NULL)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d   text := lower(add_domain.domain);
    result public.transports;
BEGIN
    PERFORM public.assert_valid(public.domain_name_error(d));
    PERFORM public.assert_valid(public.transport_error(add_domain.transport));
    IF add_domain.gid <= 0 THEN
        RAISE EXCEPTION 'gid must be a positive group id, not %', add_domain.gid
              USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.transports (domain, transport, gid)
    VALUES (d, add_domain.transport, add_domain.gid)
    RETURNING * INTO result;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'domain % is already hosted here', public.quoted(d) USING ERRCODE = '23505';
END
$$;
REVOKE ALL ON FUNCTION public.add_domain(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_domain(text, text, integer) TO mailadmin;

-- remove_domain(domain, cascade) -> void
-- Caller: members of mailadmin (runner: `mailbook domain remove`). Runs as mailowner.
-- Refuses (23503) while mailboxes or aliases remain in the domain, unless cascade,
-- which also removes them and any alias row that forwarded to a removed mailbox.
-- Locks the domain row first, so a concurrent add_mailbox waits and then fails rather
-- than leaving an orphan. Raises P0002 if the domain is not hosted.
CREATE FUNCTION public.remove_domain(domain text, cascade boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d         text := lower(remove_domain.domain);
    n_users   bigint;
    n_aliases bigint;
BEGIN
    PERFORM FROM public.transports t WHERE t.domain = d FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(d) USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO n_users FROM public.users u WHERE u.domain = d;
    SELECT count(*) INTO n_aliases FROM public.aliases a WHERE a.domain = d;
    IF n_users + n_aliases > 0 AND NOT coalesce(remove_domain.cascade, false) THEN
        RAISE EXCEPTION 'domain % still has % mailbox(es) and % alias row(s)',
                        public.quoted(d), n_users, n_aliases
              USING ERRCODE = '23503',
                    HINT = format('remove them first, or call remove_domain(%L, cascade => true)', d);
    END IF;
    DELETE FROM public.aliases a
     WHERE a.domain = d
        OR a.email IN (SELECT u.email FROM public.users u WHERE u.domain = d);
    DELETE FROM public.users u WHERE u.domain = d;
    DELETE FROM public.transports t WHERE t.domain = d;
    IF n_users + n_aliases > 0 THEN
        RAISE NOTICE 'removed % mailbox(es) and % alias row(s) of %', n_users, n_aliases, d;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.remove_domain(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remove_domain(text, boolean) TO mailadmin;

-- set_domain_active(domain, active) -> transports
-- Caller: members of mailadmin (runner: `mailbook domain enable|disable`).
-- An inactive domain answers no Postfix or Dovecot lookup, for any of its addresses.
-- Raises P0002 if the domain is not hosted, 22004 for a NULL flag.
CREATE FUNCTION public.set_domain_active(domain text, active boolean)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result public.transports;
BEGIN
    IF set_domain_active.active IS NULL THEN
        RAISE EXCEPTION 'active must not be NULL' USING ERRCODE = '22004';
    END IF;
    UPDATE public.transports t
       SET active = set_domain_active.active, modified = now()
     WHERE t.domain = lower(set_domain_active.domain)
    RETURNING * INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(lower(set_domain_active.domain))
              USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_domain_active(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_domain_active(text, boolean) TO mailadmin;

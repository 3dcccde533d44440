-- Hosted domains (table transports).

-- add_domain(domain, transport, gid) -> transports
-- Caller: members of mailadmin, and a reseller (35_scopes.sql) (runner: `mailbook domain
-- add`). Runs as mailowner. Lower-cases the name. A reseller's new domain enters its
-- scope in the same transaction (its max_domains is checked then, 0208's trigger: 23514).
-- Raises 42501 for a scoped admin that is not a reseller, or a reseller that names a
-- transport or gid (those decide where mail goes on disk: a mailadmin's), 22023 for an
-- invalid name, transport or gid, 23505 if the domain is already hosted.
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
    PERFORM public.require_reseller('add domains');
    IF public.is_scoped_admin() AND (add_domain.transport IS DISTINCT FROM 'virtual:' OR add_domain.gid IS NOT NULL) THEN
        RAISE EXCEPTION 'reseller % may not choose a transport or gid (% %); a mailadmin does',
              public.quoted(session_user), public.quoted(add_domain.transport),
              coalesce(add_domain.gid::text, 'NULL')
              USING ERRCODE = '42501';
    END IF;
    PERFORM public.assert_valid(public.domain_name_error(d));
    PERFORM public.assert_valid(public.transport_error(add_domain.transport));
    IF add_domain.gid <= 0 THEN
        RAISE EXCEPTION 'gid must be a positive group id, not %', add_domain.gid
              USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.transports (domain, transport, gid)
    VALUES (d, add_domain.transport, add_domain.gid)
    RETURNING * INTO result;
    IF public.is_scoped_admin() THEN
        INSERT INTO public.admin_scopes (admin, domain) VALUES (session_user, d);
    END IF;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'domain % is already %', public.quoted(d),
          coalesce('an alias of ' || public.quoted((SELECT t.alias_of FROM public.transports t WHERE t.domain = d)), 'hosted here')
          USING ERRCODE = '23505';
END
$$;
REVOKE ALL ON FUNCTION public.add_domain(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_domain(text, text, integer) TO mailadmin, maildomainadmin;

-- add_alias_domain(alias_domain, target_domain) -> transports
-- Caller: members of mailadmin, and a reseller for a target in its scope (runner:
-- `mailbook domain add ALIAS --alias-of TARGET`). Every mailbox and alias of the target
-- also receives mail at the same local part in the alias domain; unknown local parts are
-- refused as in the target. The alias domain follows its target's scope. Raises 42501
-- for a scoped admin that is not a reseller or a target outside its scope (someone
-- else's domain), 22023 for an invalid name, P0002 if the target is not hosted, 23503 if
-- the target is itself an alias domain, 23505 if the name is already hosted or an alias.
CREATE FUNCTION public.add_alias_domain(alias_domain text, target_domain text)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d      text := lower(add_alias_domain.alias_domain);
    target text := lower(add_alias_domain.target_domain);
    result public.transports;
BEGIN
    PERFORM public.require_reseller('add alias domains');
    PERFORM public.require_domain_scope(target);
    PERFORM public.assert_valid(public.domain_name_error(d));
    PERFORM public.assert_valid(public.domain_name_error(target));
    IF NOT EXISTS (SELECT FROM public.transports t WHERE t.domain = target) THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(target)
              USING ERRCODE = 'P0002', HINT = format('call add_domain(%L) first', target);
    END IF;
    IF d = target THEN
        RAISE EXCEPTION 'domain % cannot be an alias of itself', public.quoted(d) USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.transports (domain, alias_of) VALUES (d, target) RETURNING * INTO result;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'domain % is already %', public.quoted(d),
          coalesce('an alias of ' || public.quoted((SELECT t.alias_of FROM public.transports t WHERE t.domain = d)), 'hosted here')
          USING ERRCODE = '23505';
END
$$;
REVOKE ALL ON FUNCTION public.add_alias_domain(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_alias_domain(text, text) TO mailadmin, maildomainadmin;

-- remove_domain(domain, cascade) -> void
-- Caller: members of mailadmin, and a reseller in its scope (runner: `mailbook domain
-- remove`). Runs as mailowner. Raises 42501 for a scoped admin that is not a reseller or
-- a domain outside its scope.
-- Refuses (23503) while mailboxes, aliases or alias domains remain in the domain,
-- unless cascade, which also removes them and any alias row that forwarded to a removed
-- mailbox. An alias domain is removed like any domain.
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
    n_alias_domains bigint;
BEGIN
    PERFORM public.require_reseller('remove domains');
    PERFORM public.require_domain_scope(d);
    PERFORM FROM public.transports t WHERE t.domain = d FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(d) USING ERRCODE = 'P0002';
    END IF;
    SELECT count(*) INTO n_users FROM public.users u WHERE u.domain = d;
    SELECT count(*) INTO n_aliases FROM public.aliases a WHERE a.domain = d;
    SELECT count(*) INTO n_alias_domains FROM public.transports t WHERE t.alias_of = d;
    IF n_users + n_aliases + n_alias_domains > 0 AND NOT coalesce(remove_domain.cascade, false) THEN
        RAISE EXCEPTION 'domain % still has % mailbox(es), % alias row(s) and % alias domain(s)',
                        public.quoted(d), n_users, n_aliases, n_alias_domains
              USING ERRCODE = '23503',
                    HINT = format('remove them first, or call remove_domain(%L, cascade => true)', d);
    END IF;
    DELETE FROM public.transports t WHERE t.alias_of = d;
    DELETE FROM public.aliases a
     WHERE a.domain = d
        OR a.email IN (SELECT u.email FROM public.users u WHERE u.domain = d);
    DELETE FROM public.users u WHERE u.domain = d;
    DELETE FROM public.transports t WHERE t.domain = d;
    IF n_users + n_aliases + n_alias_domains > 0 THEN
        RAISE NOTICE 'removed % mailbox(es), % alias row(s) and % alias domain(s) of %',
                     n_users, n_aliases, n_alias_domains, d;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.remove_domain(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remove_domain(text, boolean) TO mailadmin, maildomainadmin;

-- set_domain_active(domain, active) -> transports
-- Caller: members of mailadmin, and a reseller in its scope (runner: `mailbook domain
-- enable|disable`). An inactive domain answers no Postfix or Dovecot lookup, for any of
-- its addresses. Raises 42501 for a scoped admin that is not a reseller or a domain
-- outside its scope, P0002 if the domain is not hosted, 22004 for a NULL flag.
CREATE FUNCTION public.set_domain_active(domain text, active boolean)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result public.transports;
BEGIN
    PERFORM public.require_reseller('enable or disable domains');
    PERFORM public.require_domain_scope(set_domain_active.domain);
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
GRANT EXECUTE ON FUNCTION public.set_domain_active(text, boolean) TO mailadmin, maildomainadmin;

-- Scoped admins: a customer's help desk manages its own domains only (migration 0207,
-- table admin_scopes; docs/security.md, "a customer's admin").
-- A scoped admin is a login (session_user) that is a member of maildomainadmin and not of
-- mailadmin, nor a superuser. Every check here reads session_user, never current_user:
-- the API runs as mailowner (SECURITY DEFINER), and SET ROLE cannot leave the login.
-- Who may call a function at all is its EXECUTE grant: the check only narrows a scoped
-- admin, so a function is granted to maildomainadmin once it calls require_domain_scope()
-- for every domain it touches, and not before (refused then with 42501 by PostgreSQL).
-- A managed domain: one in admin_scopes for the login, or an alias domain whose target is.

-- is_scoped_admin() -> boolean
-- Caller: the functions below. Whether session_user is a scoped admin.
CREATE FUNCTION public.is_scoped_admin() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    scoped constant regrole := pg_catalog.to_regrole('maildomainadmin');
BEGIN
    IF scoped IS NULL OR (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        RETURN false;
    END IF;
    RETURN pg_catalog.pg_has_role(session_user, scoped, 'MEMBER')
           AND NOT pg_catalog.pg_has_role(session_user, 'mailadmin', 'MEMBER');
END
$$;
REVOKE ALL ON FUNCTION public.is_scoped_admin() FROM PUBLIC;

-- managed_domains() -> SETOF text
-- Caller: members of mailadmin or maildomainadmin. The domains the login may manage:
-- every hosted domain for anyone but a scoped admin; for a scoped admin, those in
-- admin_scopes and their alias domains. Runs as mailowner.
CREATE FUNCTION public.managed_domains() RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT public.is_scoped_admin() THEN
        RETURN QUERY SELECT t.domain FROM public.transports t;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT s.domain FROM public.admin_scopes s WHERE s.admin = session_user
        UNION
        SELECT t.domain FROM public.transports t JOIN public.admin_scopes s ON s.domain = t.alias_of
         WHERE s.admin = session_user;
END
$$;
REVOKE ALL ON FUNCTION public.managed_domains() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.managed_domains() TO mailadmin, maildomainadmin;

-- admin_may_manage(domain) -> boolean
-- Caller: members of mailadmin or maildomainadmin, and the API (require_domain_scope).
-- True for everyone but a scoped admin (their EXECUTE grants decide); for a scoped admin,
-- whether the domain (lower-cased) is in its scope or an alias domain of one. Runs as mailowner.
CREATE FUNCTION public.admin_may_manage(domain text) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(admin_may_manage.domain);
BEGIN
    IF NOT public.is_scoped_admin() THEN
        RETURN true;
    END IF;
    RETURN EXISTS (SELECT FROM public.admin_scopes s
                    WHERE s.admin = session_user
                      AND (s.domain = d
                           OR s.domain = (SELECT t.alias_of FROM public.transports t WHERE t.domain = d)));
END
$$;
REVOKE ALL ON FUNCTION public.admin_may_manage(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.admin_may_manage(text) TO mailadmin, maildomainadmin;

-- require_domain_scope(domain) -> void
-- Caller: the API, before it reads or changes anything of a domain. Raises 42501
-- (insufficient_privilege) naming the login and the domain when a scoped admin may not
-- manage it. The same answer for a domain not hosted at all: no oracle of other
-- customers' domains.
CREATE FUNCTION public.require_domain_scope(domain text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT public.admin_may_manage(require_domain_scope.domain) THEN
        RAISE EXCEPTION 'admin % may not manage domain %', public.quoted(session_user),
              public.quoted(lower(require_domain_scope.domain))
              USING ERRCODE = '42501',
                    HINT = 'a scoped admin manages only the domains `mailbook admin list` shows for it';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.require_domain_scope(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.require_domain_scope(text) TO mailadmin, maildomainadmin;

-- my_mailboxes() -> SETOF mailboxes
-- Caller: members of maildomainadmin (and mailadmin: every mailbox). The mailboxes view,
-- narrowed to the domains the login manages. The view itself stays mailadmin's: Postfix
-- and Dovecot never read it, and it costs them nothing either way. Runs as mailowner.
CREATE FUNCTION public.my_mailboxes() RETURNS SETOF public.mailboxes
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.* FROM public.mailboxes m WHERE m.domain IN (SELECT public.managed_domains()) ORDER BY m.email
$$;
REVOKE ALL ON FUNCTION public.my_mailboxes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_mailboxes() TO mailadmin, maildomainadmin;

-- domain_admins() -> table(admin, domain, granted)
-- Caller: members of mailadmin (runner: `mailbook admin list`): every scope; members of
-- maildomainadmin: their own rows only. Runs as mailowner.
CREATE FUNCTION public.domain_admins() RETURNS TABLE (admin name, domain text, granted timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT s.admin, s.domain, s.granted FROM public.admin_scopes s
         WHERE NOT public.is_scoped_admin() OR s.admin = session_user
         ORDER BY s.admin, s.domain;
END
$$;
REVOKE ALL ON FUNCTION public.domain_admins() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.domain_admins() TO mailadmin, maildomainadmin;

-- grant_domain_admin(admin, domain) -> boolean (whether the scope was new)
-- Caller: the DBA and members of mailadmin (runner: `mailbook admin add`). Runs as
-- mailowner. Lets the login admin manage domain (and its alias domains). The login and
-- its membership in maildomainadmin are the DBA's (CREATE ROLE, GRANT): mailowner may
-- not make roles. Raises 42704 for an unknown role, 22023 for one of mailbook's own roles
-- (a service role must not gain powers), a member of mailadmin or a superuser (it
-- manages every domain already) or an alias domain (grant its target), 23503 for a
-- domain not hosted here. Audited (admin_scopes).
CREATE FUNCTION public.grant_domain_admin(admin name, domain text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d      constant text := lower(grant_domain_admin.domain);
    target text;
BEGIN
    IF admin IS NULL OR d IS NULL THEN
        RAISE EXCEPTION 'admin and domain must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.to_regrole(pg_catalog.quote_ident(admin)) IS NULL THEN
        RAISE EXCEPTION 'role % does not exist', public.quoted(admin) USING ERRCODE = '42704',
              HINT = 'create the login first: mailbook admin add NAME --domain DOMAIN';
    END IF;
    IF admin IN ('mailowner', 'mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail',
                 'maildkim') THEN
        RAISE EXCEPTION 'role % is one of mailbook''s own roles, not a customer''s login', public.quoted(admin)
              USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.pg_has_role(admin, 'mailadmin', 'MEMBER') THEN
        RAISE EXCEPTION 'role % is a member of mailadmin and manages every domain already', public.quoted(admin)
              USING ERRCODE = '22023';
    END IF;
    PERFORM public.assert_hosted(d);
    SELECT t.alias_of INTO target FROM public.transports t WHERE t.domain = d;
    IF target IS NOT NULL THEN
        RAISE EXCEPTION 'domain % is an alias domain of %: grant %', public.quoted(d), public.quoted(target),
              public.quoted(target) USING ERRCODE = '22023';
    END IF;
    IF NOT pg_catalog.pg_has_role(admin, 'maildomainadmin', 'MEMBER') THEN
        RAISE NOTICE 'role % is not a member of maildomainadmin: it may call nothing yet (GRANT maildomainadmin TO %)',
              admin, pg_catalog.quote_ident(admin);
    END IF;
    INSERT INTO public.admin_scopes (admin, domain) VALUES (admin, d) ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION public.grant_domain_admin(name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.grant_domain_admin(name, text) TO mailadmin;

-- revoke_domain_admin(admin, domain) -> integer (scopes removed)
-- Caller: the DBA and members of mailadmin (runner: `mailbook admin remove`). Without a
-- domain, every scope of admin goes (the role itself is the DBA's to drop). Raises
-- P0002 when nothing matched. Audited (admin_scopes).
CREATE FUNCTION public.revoke_domain_admin(admin name, domain text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       constant text := lower(revoke_domain_admin.domain);
    removed integer;
BEGIN
    DELETE FROM public.admin_scopes s
     WHERE s.admin = revoke_domain_admin.admin AND (d IS NULL OR s.domain = d);
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF removed = 0 THEN
        RAISE EXCEPTION 'admin % manages no domain%', public.quoted(admin),
              CASE WHEN d IS NULL THEN '' ELSE ' ' || public.quoted(d) END
              USING ERRCODE = 'P0002';
    END IF;
    RETURN removed;
END
$$;
REVOKE ALL ON FUNCTION public.revoke_domain_admin(name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.revoke_domain_admin(name, text) TO mailadmin;

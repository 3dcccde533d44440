-- Scoped admins: a customer's help desk manages its own domains only (migration 0207,
-- table admin_scopes; docs/security.md, "a customer's admin").
-- A scoped admin is a login (session_user) that is a member of maildomainadmin and not of
-- mailadmin, nor a superuser. Every check here reads session_user, never current_user:
-- the API runs as mailowner (SECURITY DEFINER), and SET ROLE cannot leave the login.
-- Who may call a function at all is its EXECUTE grant: the check only narrows a scoped
-- admin, so a function is granted to maildomainadmin once it calls require_domain_scope()
-- for every domain it touches, and not before (refused then with 42501 by PostgreSQL).
-- A managed domain: one in admin_scopes for the login, or an alias domain whose target is.

-- A reseller (migration 0208, table resellers) is a scoped admin that may also create
-- domains (they enter its scope), remove, enable, disable and cap them, and hand them to
-- sub-admins; its limits are triggers on the tables, so they hold whoever writes.

-- mailbook_role_names() -> text[]
-- Caller: the functions below (no role may call it: it is the API's); tests compare it
-- with mailbook/database/privileges.py ROLES.
-- mailbook's own roles (sql/roles.sql): never a customer's login, never granted a scope.
CREATE FUNCTION public.mailbook_role_names() RETURNS text[]
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT ARRAY['mailowner', 'mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim']
$$;
REVOKE ALL ON FUNCTION public.mailbook_role_names() FROM PUBLIC;

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

-- is_reseller() -> boolean
-- Caller: the functions below and in 30_domains.sql. Whether session_user is a scoped
-- admin with a row in resellers.
CREATE FUNCTION public.is_reseller() RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN public.is_scoped_admin() AND EXISTS (SELECT FROM public.resellers r WHERE r.admin = session_user);
END
$$;
REVOKE ALL ON FUNCTION public.is_reseller() FROM PUBLIC;

-- require_reseller(action) -> void
-- Caller: the API, before a change only a global admin or a reseller may make (adding,
-- removing, enabling or capping a domain, granting a scope). Raises 42501 naming the
-- login and the action for a scoped admin that is not a reseller. The domain's own scope
-- is require_domain_scope()'s to check.
CREATE FUNCTION public.require_reseller(action text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF public.is_scoped_admin() AND NOT public.is_reseller() THEN
        RAISE EXCEPTION 'admin % is not a reseller: it may not %', public.quoted(session_user), require_reseller.action
              USING ERRCODE = '42501',
                    HINT = 'a domain admin manages the mailboxes and aliases of its domains; a mailadmin does the rest';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.require_reseller(text) FROM PUBLIC;

-- assert_customer_login(admin) -> void
-- Caller: grant_domain_admin(), make_reseller(). Raises 22004 for NULL, 42704 for a role
-- that does not exist, 22023 for one of mailbook's own roles (a service role must not
-- gain powers), a superuser or a member of mailadmin (it manages every domain already).
CREATE FUNCTION public.assert_customer_login(admin name) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF admin IS NULL THEN
        RAISE EXCEPTION 'admin must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF pg_catalog.to_regrole(pg_catalog.quote_ident(admin)) IS NULL THEN
        RAISE EXCEPTION 'role % does not exist', public.quoted(admin) USING ERRCODE = '42704',
              HINT = 'create the login first: mailbook admin add NAME --domain DOMAIN';
    END IF;
    IF admin::text = ANY (public.mailbook_role_names()) THEN
        RAISE EXCEPTION 'role % is one of mailbook''s own roles, not a customer''s login', public.quoted(admin)
              USING ERRCODE = '22023';
    END IF;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = admin) THEN
        RAISE EXCEPTION 'role % is a superuser and manages every domain already', public.quoted(admin)
              USING ERRCODE = '22023';
    END IF;
    IF pg_catalog.pg_has_role(admin, 'mailadmin', 'MEMBER') THEN
        RAISE EXCEPTION 'role % is a member of mailadmin and manages every domain already', public.quoted(admin)
              USING ERRCODE = '22023';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.assert_customer_login(name) FROM PUBLIC;

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
-- maildomainadmin: their own rows, and a reseller also its domains' sub-admins. Runs as
-- mailowner.
CREATE FUNCTION public.domain_admins() RETURNS TABLE (admin name, domain text, granted timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT s.admin, s.domain, s.granted FROM public.admin_scopes s
         WHERE NOT public.is_scoped_admin() OR s.admin = session_user
            OR (public.is_reseller()
                AND s.domain IN (SELECT m.domain FROM public.admin_scopes m WHERE m.admin = session_user))
         ORDER BY s.admin, s.domain;
END
$$;
REVOKE ALL ON FUNCTION public.domain_admins() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.domain_admins() TO mailadmin, maildomainadmin;

-- grant_domain_admin(admin, domain) -> boolean (whether the scope was new)
-- Caller: the DBA and members of mailadmin (runner: `mailbook admin add`), and a
-- reseller for its own domains (a sub-admin). Runs as mailowner. Lets the login admin
-- manage domain (and its alias domains). The login and its membership in maildomainadmin
-- are the DBA's (CREATE ROLE, GRANT): mailowner may not make roles. Raises 42501 for a
-- scoped admin that is not a reseller, or a domain outside the reseller's scope; 42704
-- for an unknown role, 22023 for one of mailbook's own roles, a superuser or a member of
-- mailadmin (assert_customer_login), an alias domain (grant its target), and from a
-- reseller for itself or another reseller; 23503 for a domain not hosted here; 23514 when
-- a reseller's limits would be exceeded (0208's trigger). Audited (admin_scopes).
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
    PERFORM public.require_reseller('grant domain admins');
    PERFORM public.require_domain_scope(d);  -- a reseller's own domains only (no oracle of others')
    PERFORM public.assert_customer_login(admin);
    IF public.is_scoped_admin() AND admin = session_user THEN
        RAISE EXCEPTION 'admin % manages domain % already', public.quoted(admin), public.quoted(d)
              USING ERRCODE = '22023';
    END IF;
    IF public.is_scoped_admin() AND EXISTS (SELECT FROM public.resellers r WHERE r.admin = grant_domain_admin.admin) THEN
        RAISE EXCEPTION 'role % is another reseller: only a mailadmin gives a domain to a reseller', public.quoted(admin)
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
GRANT EXECUTE ON FUNCTION public.grant_domain_admin(name, text) TO mailadmin, maildomainadmin;

-- revoke_domain_admin(admin, domain) -> integer (scopes removed)
-- Caller: the DBA and members of mailadmin (runner: `mailbook admin remove`), and a
-- reseller for its sub-admins of its own domains. Without a domain, every scope of admin
-- goes (for a reseller: every one in its domains); the role itself is the DBA's to drop.
-- Raises 42501 for a scoped admin that is not a reseller or a domain outside its scope,
-- 22023 from a reseller for itself (remove_domain() gives a domain up), P0002 when
-- nothing matched. Audited (admin_scopes).
CREATE FUNCTION public.revoke_domain_admin(admin name, domain text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d       constant text := lower(revoke_domain_admin.domain);
    scoped  constant boolean := public.is_scoped_admin();
    removed integer;
BEGIN
    PERFORM public.require_reseller('revoke domain admins');
    IF d IS NOT NULL THEN
        PERFORM public.require_domain_scope(d);
    END IF;
    IF scoped AND admin = session_user THEN
        RAISE EXCEPTION 'admin % cannot give up its own domains this way', public.quoted(admin)
              USING ERRCODE = '22023', HINT = 'remove the domain instead (mailbook domain remove)';
    END IF;
    DELETE FROM public.admin_scopes s
     WHERE s.admin = revoke_domain_admin.admin AND (d IS NULL OR s.domain = d)
       AND (NOT scoped OR s.domain IN (SELECT m.domain FROM public.admin_scopes m WHERE m.admin = session_user));
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
GRANT EXECUTE ON FUNCTION public.revoke_domain_admin(name, text) TO mailadmin, maildomainadmin;

-- make_reseller(admin, max_domains, max_mailboxes, max_quota_bytes) -> boolean
-- (true: made a reseller now; false: its limits set again. Not the resellers row: the API
-- is also re-created where 0208 has not run yet, and its row type would not exist; read
-- the row with resellers().)
-- Caller: the DBA and members of mailadmin (runner: `mailbook admin reseller`). Runs as
-- mailowner. Makes a login a reseller, or sets a reseller's limits again (each NULL: no
-- cap). The limits bind everyone from then on (0208's triggers); one below what the
-- reseller holds is allowed (a NOTICE says so) and stops further additions. Raises
-- 42704/22023 as grant_domain_admin() does for the login (assert_customer_login), 22023
-- for a negative limit or a quota that is not positive. Audited (resellers).
CREATE FUNCTION public.make_reseller(admin name, max_domains integer, max_mailboxes integer,
                                    max_quota_bytes bigint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    made boolean;
    used record;
BEGIN
    PERFORM public.assert_customer_login(admin);
    IF max_domains < 0 OR max_mailboxes < 0 OR max_quota_bytes <= 0 THEN
        RAISE EXCEPTION 'limits must not be negative and a total quota must be positive (NULL for no cap), not % domains, % mailboxes, % bytes',
              coalesce(max_domains::text, 'NULL'), coalesce(max_mailboxes::text, 'NULL'),
              coalesce(max_quota_bytes::text, 'NULL')
              USING ERRCODE = '22023';
    END IF;
    IF NOT pg_catalog.pg_has_role(admin, 'maildomainadmin', 'MEMBER') THEN
        RAISE NOTICE 'role % is not a member of maildomainadmin: it may call nothing yet (GRANT maildomainadmin TO %)',
              admin, pg_catalog.quote_ident(admin);
    END IF;
    INSERT INTO public.resellers AS r (admin, max_domains, max_mailboxes, max_quota_bytes)
    VALUES (admin, max_domains, max_mailboxes, max_quota_bytes)
    ON CONFLICT ON CONSTRAINT resellers_pkey DO UPDATE
       SET max_domains = excluded.max_domains, max_mailboxes = excluded.max_mailboxes,
           max_quota_bytes = excluded.max_quota_bytes, modified = now()
    RETURNING (r.xmax = 0) INTO made;
    SELECT * INTO used FROM public.resellers() u WHERE u.admin = make_reseller.admin;
    IF used.domains > max_domains OR used.mailboxes > max_mailboxes OR used.quota_bytes > max_quota_bytes THEN
        RAISE NOTICE 'reseller % holds more than its limits allow (% domain(s), % mailbox(es), % bytes): it may add no more',
              admin, used.domains, used.mailboxes, used.quota_bytes;
    END IF;
    RETURN made;
END
$$;
REVOKE ALL ON FUNCTION public.make_reseller(name, integer, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.make_reseller(name, integer, integer, bigint) TO mailadmin;

-- unmake_reseller(admin) -> void
-- Caller: the DBA and members of mailadmin (runner: `mailbook admin remove`). The login
-- keeps its scopes as a plain domain admin (revoke_domain_admin() takes them). Raises
-- P0002 if it is not a reseller. Audited (resellers).
CREATE FUNCTION public.unmake_reseller(admin name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM public.resellers r WHERE r.admin = unmake_reseller.admin;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role % is not a reseller', public.quoted(admin) USING ERRCODE = 'P0002';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.unmake_reseller(name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.unmake_reseller(name) TO mailadmin;

-- resellers() -> table(admin, max_domains, domains, max_mailboxes, mailboxes, max_quota_bytes, quota_bytes)
-- Caller: members of mailadmin (runner: `mailbook admin list`): every reseller with its
-- limits and what it uses; members of maildomainadmin: their own row, if any. The usage
-- counts what the limits count: its domains (admin_scopes rows), their mailboxes and the
-- sum of those mailboxes' byte quotas. Runs as mailowner.
CREATE FUNCTION public.resellers() RETURNS TABLE (admin name, max_domains integer, domains bigint,
                                                  max_mailboxes integer, mailboxes bigint,
                                                  max_quota_bytes bigint, quota_bytes numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT r.admin, r.max_domains,
               (SELECT count(*) FROM public.admin_scopes s WHERE s.admin = r.admin),
               r.max_mailboxes, u.mailboxes, r.max_quota_bytes, u.quota
          FROM public.resellers r
         CROSS JOIN LATERAL (SELECT count(*) AS mailboxes, coalesce(sum(x.quota_bytes), 0) AS quota
                               FROM public.users x
                              WHERE x.domain IN (SELECT s.domain FROM public.admin_scopes s WHERE s.admin = r.admin)) u
         WHERE NOT public.is_scoped_admin() OR r.admin = session_user
         ORDER BY r.admin;
END
$$;
REVOKE ALL ON FUNCTION public.resellers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.resellers() TO mailadmin, maildomainadmin;

-- whoami() -> table(login, kind, may, domains, max_domains, used_domains, max_mailboxes,
--                   used_mailboxes, max_quota_bytes, used_quota_bytes)
-- Caller: members of mailadmin or maildomainadmin (runner: `mailbook whoami`). One row
-- for session_user: kind is superuser, global admin, reseller, domain admin, service
-- role or nothing; may says in a sentence what that allows; domains are the ones it
-- manages (NULL: every one); the limits and usage columns are a reseller's. Runs as
-- mailowner.
CREATE FUNCTION public.whoami() RETURNS TABLE (login name, kind text, may text, domains text[],
                                               max_domains integer, used_domains bigint,
                                               max_mailboxes integer, used_mailboxes bigint,
                                               max_quota_bytes bigint, used_quota_bytes numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    service text;
    mine    text[];
BEGIN
    login := session_user;
    SELECT array_agg(m ORDER BY m) INTO mine FROM public.managed_domains() m;
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user) THEN
        kind := 'superuser';
        may := 'everything, the roles and the schema included';
    ELSIF pg_catalog.pg_has_role(session_user, 'mailadmin', 'MEMBER') THEN
        kind := 'global admin';
        may := 'manage every domain, mailbox and alias, and give customers their admins';
    ELSIF public.is_reseller() THEN
        kind := 'reseller';
        may := 'create domains within its limits, manage them and give them sub-admins';
        domains := mine;
        SELECT r.max_domains, r.domains, r.max_mailboxes, r.mailboxes, r.max_quota_bytes, r.quota_bytes
          INTO max_domains, used_domains, max_mailboxes, used_mailboxes, max_quota_bytes, used_quota_bytes
          FROM public.resellers() r WHERE r.admin = session_user;
    ELSIF public.is_scoped_admin() AND mine IS NOT NULL THEN
        kind := 'domain admin';
        may := 'manage the mailboxes, aliases and vacations of its domains';
        domains := mine;
    ELSE
        SELECT string_agg(r, ', ' ORDER BY r) INTO service
          FROM unnest(public.mailbook_role_names()) r
         WHERE r NOT IN ('mailowner', 'mailadmin', 'maildomainadmin') AND pg_catalog.pg_has_role(session_user, r, 'MEMBER');
        IF service IS NOT NULL THEN
            kind := 'service role';
            may := 'what ' || service || ' is for, no administration';
        ELSE
            kind := 'nothing';
            may := 'nothing here yet: a mailadmin grants it domains (mailbook admin add)';
            domains := '{}';
        END IF;
    END IF;
    RETURN NEXT;
END
$$;
REVOKE ALL ON FUNCTION public.whoami() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.whoami() TO mailadmin, maildomainadmin;

-- The mail database's catalogue as facts: who owns, may do and is what. `mailbook doctor`
-- compares them with sql/catalogue.expected (these facts on a freshly migrated database,
-- written by `mailbook privileges --facts`, kept so by tests/test_doctor.py); each fact
-- comes with the statement that takes it away (revert) and the one that puts it back
-- (restore). {database} stands for the database's quoted name.
--
-- Wholly in scope: the database; schemas public and crypto and every schema a
-- non-superuser owns; their tables, views, sequences, columns and functions (pgcrypto's
-- too); the default privileges of the five roles and any in those schemas; the five
-- roles' attributes and memberships (members of mailadmin, the help-desk and DBA logins,
-- are expected to vary, but not to hand mailadmin on, read every table, touch the
-- server's files, create roles or replicate); extensions. A schema owned by anyone but a
-- superuser, mailadmin included, is unexpected; a superuser's own is not. Any other schema
-- (pg_catalog, information_schema, a superuser's own such as pgTAP's) is its owner's
-- business, except what it grants to or lets be owned by the five roles
-- (`GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_file(text) TO mailadmin`), and, in
-- pg_catalog, what PUBLIC may do beyond what initdb left it (pg_init_privs, which
-- information_schema, made later by initdb, is not in; `GRANT SELECT ON
-- pg_catalog.pg_statistic TO PUBLIC`).
-- A superuser is named "a superuser" and never listed as a grantee or member: it may do
-- everything anyway. An owner's own privileges are implied by ownership, not listed.
WITH
-- superusers, and pg_database_owner (PostgreSQL 14+: whoever owns the database, here mailowner)
super AS (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolsuper OR r.rolname = 'pg_database_owner'),
ours AS (SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r
          WHERE r.rolname IN ('mailowner', 'mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota',
                               'mailwebmail', 'maildkim')),
-- the help-desk logins: direct members of mailadmin but the five roles and superusers
helpdesk AS (SELECT m.oid, m.rolname, m.rolcreaterole, m.rolreplication
               FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles m ON m.oid = am.member
              WHERE am.roleid = (SELECT oid FROM ours WHERE rolname = 'mailadmin')
                AND m.oid NOT IN (SELECT oid FROM ours) AND m.oid NOT IN (SELECT oid FROM super)),
-- whole: every fact counts; otherwise only facts naming one of the five roles (or, in
-- pg_catalog, PUBLIC beyond initdb's privileges)
schemas AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl, n.nspname = 'pg_catalog' AS system,
           n.nspname IN ('public', 'crypto')
           OR (n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspowner NOT IN (SELECT oid FROM super)) AS whole
      FROM pg_catalog.pg_namespace n
     WHERE n.nspname <> 'pg_toast' AND n.nspname !~ '^pg_(toast_)?temp_'
),
-- every object: how a fact names it, how a statement names it, its owner and its ACL
-- with the defaults made explicit (acldefault), so a PUBLIC grant that was never
-- revoked shows
objects (obj, label, target, alter_target, kind, owner, acl, whole, extension, initial) AS (
    SELECT d.oid, 'database', 'DATABASE {database}', 'DATABASE {database}', 'DATABASE', d.datdba,
           coalesce(d.datacl, acldefault('d', d.datdba)), true, NULL, NULL::aclitem[]
      FROM pg_catalog.pg_database d WHERE d.datname = current_database()
    UNION ALL
    SELECT s.oid, 'schema ' || s.nspname, format('SCHEMA %I', s.nspname), format('SCHEMA %I', s.nspname), 'SCHEMA',
           -- schema public belongs to pg_database_owner (PostgreSQL 15) or a superuser (13, 14)
           CASE WHEN s.nspname = 'public' AND s.nspowner IN (SELECT oid FROM super) THEN NULL ELSE s.nspowner END,
           coalesce(s.nspacl, acldefault('n', s.nspowner)), s.whole, NULL,
           CASE WHEN s.system THEN coalesce((SELECT i.initprivs FROM pg_catalog.pg_init_privs i
                                              WHERE i.classoid = 'pg_namespace'::regclass AND i.objoid = s.oid
                                                AND i.objsubid = 0), acldefault('n', s.nspowner)) END
      FROM schemas s
    UNION ALL
    SELECT c.oid, CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view ' ELSE 'table ' END
               || format('%I.%I', s.nspname, c.relname),
           CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || format('%I.%I', s.nspname, c.relname),
           CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' WHEN 'v' THEN 'VIEW ' WHEN 'm' THEN 'MATERIALIZED VIEW '
                          WHEN 'f' THEN 'FOREIGN TABLE ' ELSE 'TABLE ' END
               || format('%I.%I', s.nspname, c.relname),
           CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END,
           c.relowner, coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)),
           s.whole, (SELECT e.extname FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_extension e ON e.oid = dep.refobjid
                      WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid AND dep.deptype = 'e'),
           CASE WHEN s.system THEN coalesce((SELECT i.initprivs FROM pg_catalog.pg_init_privs i
                                              WHERE i.classoid = 'pg_class'::regclass AND i.objoid = c.oid AND i.objsubid = 0),
                                            acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) END
      FROM pg_catalog.pg_class c JOIN schemas s ON s.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    UNION ALL
    SELECT p.oid, lower(p.word) || ' ' || p.name, p.word || ' ' || p.name, p.word || ' ' || p.name,
           'FUNCTION', p.proowner, coalesce(p.proacl, acldefault('f', p.proowner)), p.whole, p.extension,
           CASE WHEN p.system THEN coalesce((SELECT i.initprivs FROM pg_catalog.pg_init_privs i
                                              WHERE i.classoid = 'pg_proc'::regclass AND i.objoid = p.oid AND i.objsubid = 0),
                                            acldefault('f', p.proowner)) END
      FROM (SELECT p.oid, p.proowner, p.proacl, s.whole, s.system,
                   CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS word,
                   format('%I.%I(%s)', s.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)) AS name,
                   (SELECT e.extname FROM pg_catalog.pg_depend dep JOIN pg_catalog.pg_extension e ON e.oid = dep.refobjid
                     WHERE dep.classid = 'pg_proc'::regclass AND dep.objid = p.oid AND dep.deptype = 'e') AS extension
              FROM pg_catalog.pg_proc p JOIN schemas s ON s.oid = p.pronamespace
             -- outside the whole schemas, only what names one of the five roles
             WHERE p.prokind IN ('f', 'p')
               AND (s.whole OR p.proowner IN (SELECT oid FROM ours) OR (s.system AND p.proacl IS NOT NULL)
                    OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee IN (SELECT oid FROM ours)))) p
),
-- what initdb let PUBLIC do in pg_catalog
initial_public (obj, subid, privilege_type) AS (
    SELECT o.obj, 0, b.privilege_type FROM objects o, LATERAL aclexplode(o.initial) b WHERE b.grantee = 0
    UNION ALL
    SELECT i.objoid, i.objsubid, b.privilege_type
      FROM pg_catalog.pg_init_privs i, LATERAL aclexplode(i.initprivs) b
     WHERE i.classoid = 'pg_class'::regclass AND i.objsubid > 0 AND b.grantee = 0
),
who (oid, name) AS (
    SELECT 0::oid, 'PUBLIC'
    UNION ALL
    SELECT r.oid, quote_ident(r.rolname) FROM pg_catalog.pg_roles r
),
-- extension: the extension an object belongs to (doctor folds its facts into the extension's)
facts (fact, revert, restore, extension) AS (
    -- owners
    SELECT format('owner of %s: %s', o.label,
                  CASE WHEN o.owner IN (SELECT oid FROM super) THEN 'a superuser' ELSE o.owner::regrole::text END),
           -- an extension's objects go with it
           CASE WHEN o.extension IS NOT NULL THEN format('DROP EXTENSION IF EXISTS %I', o.extension)
                -- PostgreSQL 15 gives it to whoever owns the database
                WHEN o.label = 'schema public' THEN 'ALTER SCHEMA public OWNER TO pg_database_owner'
                WHEN o.kind = 'DATABASE' THEN 'DROP ' || o.alter_target
                ELSE regexp_replace(o.alter_target, '^((MATERIALIZED VIEW|FOREIGN TABLE|\w+) )', 'DROP \1IF EXISTS ') END,
           format('ALTER %s OWNER TO %s', o.alter_target, o.owner::regrole), o.extension
      FROM objects o WHERE o.owner IS NOT NULL AND (o.whole OR o.owner IN (SELECT oid FROM ours))
    UNION ALL
    -- privileges on objects
    SELECT format('%s may %s %s%s', w.name, a.privilege_type, o.label, CASE WHEN a.is_grantable THEN ' (and grant it)' END),
           format('REVOKE %s ON %s FROM %s', a.privilege_type, o.target, w.name),
           format('GRANT %s ON %s TO %s%s', a.privilege_type, o.target, w.name,
                  CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END), o.extension
      FROM objects o, LATERAL aclexplode(o.acl) a JOIN who w ON w.oid = a.grantee
     WHERE a.grantee IS DISTINCT FROM o.owner AND a.grantee NOT IN (SELECT oid FROM super)
       AND (o.whole OR a.grantee IN (SELECT oid FROM ours)
            OR (a.grantee = 0 AND o.initial IS NOT NULL
                AND (o.obj, 0, a.privilege_type) NOT IN (SELECT * FROM initial_public)))
    UNION ALL
    -- privileges on columns
    SELECT format('%s may %s column %I of %s', w.name, a.privilege_type, att.attname, o.label),
           format('REVOKE %s (%I) ON %s FROM %s', a.privilege_type, att.attname, o.target, w.name),
           format('GRANT %s (%I) ON %s TO %s', a.privilege_type, att.attname, o.target, w.name), o.extension
      FROM objects o
      JOIN pg_catalog.pg_attribute att ON o.kind IN ('TABLE', 'VIEW')
                                      AND att.attrelid = o.obj
                                      AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL,
           LATERAL aclexplode(att.attacl) a JOIN who w ON w.oid = a.grantee
     WHERE a.grantee NOT IN (SELECT oid FROM super)
       AND (o.whole OR a.grantee IN (SELECT oid FROM ours)
            OR (a.grantee = 0 AND o.initial IS NOT NULL
                AND (o.obj, att.attnum::int, a.privilege_type) NOT IN (SELECT * FROM initial_public)))
    UNION ALL
    -- SECURITY DEFINER and settings of functions
    SELECT format('%s runs as its owner', o.label),
           format('ALTER %s SECURITY INVOKER', o.target), format('ALTER %s SECURITY DEFINER', o.target),
           o.extension
      FROM objects o JOIN pg_catalog.pg_proc p ON o.kind = 'FUNCTION' AND p.oid = o.obj
     WHERE p.prosecdef AND (o.whole OR o.owner IN (SELECT oid FROM ours))
    UNION ALL
    SELECT format('%s sets %s', o.label, c.setting),
           format('ALTER %s RESET %s', o.target, split_part(c.setting, '=', 1)),
           format('ALTER %s SET %s = %s', o.target, split_part(c.setting, '=', 1), substr(c.setting, strpos(c.setting, '=') + 1)),
           o.extension
      FROM objects o JOIN pg_catalog.pg_proc p ON o.kind = 'FUNCTION' AND p.oid = o.obj,
           LATERAL unnest(p.proconfig) AS c(setting)
     WHERE o.whole OR o.owner IN (SELECT oid FROM ours)
    UNION ALL
    -- default privileges: the five roles' own (defaults made explicit), and any in scope
    SELECT format('%s may %s whatever %s creates of %s%s', w.name, a.privilege_type, r.rolname, k.word,
                  coalesce(' in schema ' || d.nspname, '')),
           format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE %s ON %s FROM %s', r.rolname,
                  coalesce(' IN SCHEMA ' || quote_ident(d.nspname), ''), a.privilege_type, upper(k.word), w.name),
           format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s GRANT %s ON %s TO %s', r.rolname,
                  coalesce(' IN SCHEMA ' || quote_ident(d.nspname), ''), a.privilege_type, upper(k.word), w.name),
           NULL
      FROM (SELECT o.oid AS role, k.objtype, NULL::text AS nspname,
                   coalesce((SELECT x.defaclacl FROM pg_catalog.pg_default_acl x
                              WHERE x.defaclrole = o.oid AND x.defaclnamespace = 0 AND x.defaclobjtype = k.objtype),
                            acldefault(CASE k.objtype WHEN 'S' THEN 's' ELSE k.objtype END, o.oid)) AS acl
              FROM ours o CROSS JOIN (VALUES ('r'::"char"), ('S'), ('f'), ('T'), ('n')) AS k(objtype)
            UNION ALL
            SELECT x.defaclrole, x.defaclobjtype, s.nspname, x.defaclacl
              FROM pg_catalog.pg_default_acl x JOIN schemas s ON s.oid = x.defaclnamespace
             WHERE s.whole OR x.defaclrole IN (SELECT oid FROM ours)
                OR EXISTS (SELECT FROM aclexplode(x.defaclacl) a WHERE a.grantee IN (SELECT oid FROM ours))
            UNION ALL
            SELECT x.defaclrole, x.defaclobjtype, NULL, x.defaclacl
              FROM pg_catalog.pg_default_acl x
             WHERE x.defaclnamespace = 0 AND x.defaclrole NOT IN (SELECT oid FROM ours)
               AND x.defaclrole NOT IN (SELECT oid FROM super)) d
      JOIN pg_catalog.pg_roles r ON r.oid = d.role
      JOIN (VALUES ('r'::"char", 'tables'), ('S', 'sequences'), ('f', 'functions'), ('T', 'types'), ('n', 'schemas'))
           AS k(objtype, word) ON k.objtype = d.objtype,
           LATERAL aclexplode(d.acl) a JOIN who w ON w.oid = a.grantee
     WHERE a.grantee <> d.role AND a.grantee NOT IN (SELECT oid FROM super)
    UNION ALL
    -- the five roles: attributes
    SELECT format('role %s is %s', o.rolname, x.attr),
           format('ALTER ROLE %I %s', o.rolname, x.undo), format('ALTER ROLE %I %s', o.rolname, x.attr), NULL
      FROM ours o JOIN pg_catalog.pg_roles r ON r.oid = o.oid,
           LATERAL (VALUES ('SUPERUSER', 'NOSUPERUSER', r.rolsuper), ('CREATEROLE', 'NOCREATEROLE', r.rolcreaterole),
                           ('CREATEDB', 'NOCREATEDB', r.rolcreatedb), ('REPLICATION', 'NOREPLICATION', r.rolreplication),
                           ('BYPASSRLS', 'NOBYPASSRLS', r.rolbypassrls), ('LOGIN', 'NOLOGIN', r.rolcanlogin),
                           ('NOINHERIT', 'INHERIT', NOT r.rolinherit)) AS x(attr, undo, is_set)
     WHERE x.is_set
    UNION ALL
    -- memberships in and of the five roles, superusers aside; the logins in mailadmin
    -- and maildomainadmin (the scoped admins) only when they may hand it on
    SELECT CASE WHEN mine THEN format('%s is a member of %s%s', quote_ident(m.rolname), quote_ident(g.rolname),
                                      CASE WHEN am.admin_option THEN ' (and may grant it)' END)
                ELSE format('%s may grant %s to others', quote_ident(m.rolname), quote_ident(g.rolname)) END,
           CASE WHEN mine THEN format('REVOKE %I FROM %I', g.rolname, m.rolname)
                ELSE format('REVOKE ADMIN OPTION FOR %I FROM %I', g.rolname, m.rolname) END,
           format('GRANT %I TO %I%s', g.rolname, m.rolname, CASE WHEN am.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END),
           NULL
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles m ON m.oid = am.member,
           LATERAL (SELECT NOT (g.rolname IN ('mailadmin', 'maildomainadmin') AND am.member NOT IN (SELECT oid FROM ours)) AS mine) x
     WHERE (am.roleid IN (SELECT oid FROM ours) OR am.member IN (SELECT oid FROM ours))
       AND (mine OR am.admin_option)
       AND am.member NOT IN (SELECT oid FROM super)
    UNION ALL
    -- the help-desk logins: nothing that reaches past mailadmin (reading every table,
    -- the server's files, granting itself mailowner, streaming the cluster)
    SELECT format('%s, a member of mailadmin, is a member of %s', quote_ident(h.rolname), g.rolname),
           format('REVOKE %I FROM %I', g.rolname, h.rolname), format('GRANT %I TO %I', g.rolname, h.rolname), NULL
      FROM helpdesk h JOIN pg_catalog.pg_auth_members am ON am.member = h.oid
      JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
     WHERE g.rolname IN ('pg_read_all_data', 'pg_write_all_data', 'pg_read_server_files', 'pg_write_server_files',
                         'pg_execute_server_program')
    UNION ALL
    SELECT format('%s, a member of mailadmin, is %s', quote_ident(h.rolname), x.attr),
           format('ALTER ROLE %I NO%s', h.rolname, x.attr), format('ALTER ROLE %I %s', h.rolname, x.attr), NULL
      FROM helpdesk h, LATERAL (VALUES ('CREATEROLE', h.rolcreaterole), ('REPLICATION', h.rolreplication)) AS x(attr, is_set)
     WHERE x.is_set
    UNION ALL
    -- extensions in scope
    SELECT format('extension %s lives in schema %s', e.extname, s.nspname),
           format('DROP EXTENSION %I', e.extname), 'mailbook migrate apply', NULL
      FROM pg_catalog.pg_extension e JOIN schemas s ON s.oid = e.extnamespace AND s.whole
)
SELECT f.fact, f.revert, f.restore, f.extension FROM facts f ORDER BY f.fact

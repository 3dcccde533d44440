-- Delegated administration, step one (issue 32): a customer's help desk gets a login that
-- manages that customer's domains and nothing else, enforced by PostgreSQL whatever the
-- client (psql, the CLI, a web front-end).
-- Design, safe by construction so it can land function by function:
-- * A scoped admin is a login role that is a member of the NOLOGIN group role
--   maildomainadmin (created by `mailbook init`, sql/roles.sql) and NOT of mailadmin.
--   The global mailadmin stays exactly as it was.
-- * maildomainadmin may EXECUTE only API functions that check the scope
--   (require_domain_scope(), sql/api/35_scopes.sql) and reads no table or view: a
--   function not yet made scope-aware is simply not granted to it, so it is refused
--   with 42501 like any other role's call (tests/test_admin_scopes.py iterates the
--   catalogue to hold that).
-- * The check names session_user, never current_user: SECURITY DEFINER functions run as
--   mailowner, and SET ROLE cannot leave the login (SET SESSION AUTHORIZATION needs a
--   superuser). Who may reach a function at all is its EXECUTE grant; the check only
--   narrows a scoped admin.
-- * Who manages which domains is this table, one row per (admin, domain), changed by the
--   DBA or a mailadmin through grant_domain_admin()/revoke_domain_admin(), audited like
--   every mail table. The alias domains of a managed domain are managed too (they follow
--   their target: granting an alias domain itself is refused); a domain removed takes its
--   scope rows with it. admin is a role name, not a reference: roles are cluster-wide
--   and a dropped role's rows grant nothing to anyone until a new role of that name is
--   made (revoke first, then DROP ROLE).
-- Read by no service role: Postfix and Dovecot lookups never consult it, so they cost
-- what they cost before.
-- depends: 0206_record_bulk_inserts_by_domain

DO $check$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'maildomainadmin') THEN
        RAISE EXCEPTION 'role maildomainadmin does not exist'
              USING ERRCODE = '42704',
                    HINT = 'run `mailbook init` as a superuser first; it creates the roles (and changes nothing else)';
    END IF;
END
$check$;

GRANT USAGE ON SCHEMA public TO maildomainadmin;

CREATE TABLE public.admin_scopes (
    admin   name NOT NULL,
    domain  text NOT NULL
            CONSTRAINT admin_scopes_domain_hosted REFERENCES public.transports (domain) ON DELETE CASCADE,
    granted timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT admin_scopes_pkey PRIMARY KEY (admin, domain)
);
CREATE INDEX admin_scopes_domain_idx ON public.admin_scopes (domain);
COMMENT ON TABLE public.admin_scopes IS
'Scoped admins (logins in maildomainadmin) and the domains each may manage; alias domains of those follow their target. Change it with grant_domain_admin() and revoke_domain_admin(); read it with domain_admins().';
COMMENT ON COLUMN public.admin_scopes.admin IS 'The login role (session_user) of the scoped admin.';
COMMENT ON COLUMN public.admin_scopes.domain IS 'A mailbox domain it manages; removing the domain removes the row.';
COMMENT ON COLUMN public.admin_scopes.granted IS 'When the scope was granted.';

CREATE TRIGGER audit_insert AFTER INSERT ON public.admin_scopes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('admin', 'domain');
CREATE TRIGGER audit_delete AFTER DELETE ON public.admin_scopes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('admin', 'domain');
CREATE TRIGGER audit_update AFTER UPDATE ON public.admin_scopes
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('admin', 'domain');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.admin_scopes
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

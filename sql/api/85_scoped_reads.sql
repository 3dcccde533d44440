-- What a customer's admin (maildomainadmin, 35_scopes.sql) may read of its own domains:
-- the domain list, the audit log and an export. It reads no table or view itself
-- (90_privileges.sql), so each is a function that narrows to managed_domains(). The
-- runner calls these only for a scoped login (`mailbook domain list`, `log`, `export`);
-- mailadmin keeps reading the tables as itself.
--
-- Whose is a row: its key's domain. A domain row (and an alias domain's) is its
-- domain's; a mailbox, a vacation reply, an alias (a catch-all "@d" too) and a send-as
-- grant belong to the domain of the mailbox, the alias, and the grant's login. Where a
-- forward or a grant points (an alias's destination, a grant's address) does not make
-- the row anyone else's: it is the owner's setting, as any forward to an outside
-- address is.

-- my_domains() -> table(domain, alias_of, transport, gid, active, services_off, max_mailboxes,
--                       max_aliases, max_quota_bytes, max_mailbox_quota_bytes, mailboxes, aliases)
-- Caller: members of maildomainadmin (runner: `mailbook domain list`; and mailadmin,
-- which reads the tables itself: queries.DOMAINS); the same columns, for the managed
-- domains and their alias domains only. Runs as mailowner; raises nothing.
CREATE FUNCTION public.my_domains()
RETURNS TABLE (domain text, alias_of text, transport text, gid integer, active boolean, services_off text[],
               max_mailboxes integer, max_aliases integer, max_quota_bytes bigint, max_mailbox_quota_bytes bigint,
               mailboxes bigint, aliases bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.domain, t.alias_of, t.transport, t.gid, t.active, t.disabled_services,
           t.max_mailboxes, t.max_aliases, t.max_quota_bytes, t.max_mailbox_quota_bytes,
           (SELECT count(*) FROM public.users u WHERE u.domain = t.domain),
           (SELECT count(*) FROM public.aliases a WHERE a.domain = t.domain)
      FROM public.transports t
     WHERE t.domain IN (SELECT public.managed_domains())
     ORDER BY t.domain
$$;
REVOKE ALL ON FUNCTION public.my_domains() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_domains() TO mailadmin, maildomainadmin;

-- audit_key_domains(table_name, row_key) -> text[]
-- Caller: my_audit_log() only (granted to nobody). The domains an audit_log row's key
-- names, by the rule at the top: transports the domain; users and vacations the
-- address's; aliases the alias's; send_as the login's. An UPDATE that changed the key
-- ("old => new") yields both sides'. NULL elements for a table whose rows have no
-- domain (settings, admin_scopes, one added later), NULL for a NULL key (TRUNCATE,
-- settings): such rows are nobody's customer's.
CREATE FUNCTION public.audit_key_domains(table_name text, row_key text) RETURNS text[]
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT array_agg(CASE audit_key_domains.table_name
                     WHEN 'transports' THEN side
                     WHEN 'users' THEN split_part(side, '@', 2)
                     WHEN 'vacations' THEN split_part(side, '@', 2)
                     WHEN 'aliases' THEN split_part(split_part(side, ' -> ', 1), '@', 2)
                     WHEN 'send_as' THEN split_part(split_part(side, ' -> ', 1), '@', 2)
                 END)
  FROM unnest(string_to_array(audit_key_domains.row_key, ' => ')) AS side
$$;
REVOKE ALL ON FUNCTION public.audit_key_domains(text, text) FROM PUBLIC;

-- my_audit_log(table_name, key, since, max_rows) -> SETOF audit_log
-- Caller: members of maildomainadmin (runner: `mailbook log`; mailadmin reads the
-- table itself, and a login in both roles gets every row, as the table shows it). The
-- newest max_rows entries (to table_name, with key in
-- row_key, at or after since; NULL: any), newest first. For a customer's admin, only
-- rows of its domains (audit_key_domains(): every domain the key names must be managed),
-- and only since the admin was given that domain (admin_scopes.granted; an alias domain's
-- is its target's): a domain removed and hosted again for another customer does not show
-- the new customer the old one's addresses. Its own admin_scopes rows (its grants and
-- revocations) are shown whenever they were made. Rows without a domain (settings, a
-- TRUNCATE) are not shown: they are the provider's. The table itself stays unreadable.
-- Runs as mailowner; raises 22023 for a max_rows below 1.
CREATE FUNCTION public.my_audit_log(table_name text DEFAULT NULL, key text DEFAULT NULL,
                                    since timestamptz DEFAULT NULL, max_rows integer DEFAULT 50)
RETURNS SETOF public.audit_log
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k constant text := lower(my_audit_log.key);
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be 1 or more, not %', coalesce(max_rows::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF NOT public.is_scoped_admin() THEN
        RETURN QUERY
            SELECT l.* FROM public.audit_log l
             WHERE (my_audit_log.table_name IS NULL OR l.table_name = my_audit_log.table_name)
               AND (k IS NULL OR strpos(l.row_key, k) > 0)
               AND (since IS NULL OR l.at >= since)
             ORDER BY l.id DESC LIMIT max_rows;
        RETURN;
    END IF;
    RETURN QUERY
        WITH mine AS MATERIALIZED (
            SELECT s.domain, s.granted FROM public.admin_scopes s WHERE s.admin = session_user
            UNION ALL
            SELECT t.domain, s.granted FROM public.transports t JOIN public.admin_scopes s ON s.domain = t.alias_of
             WHERE s.admin = session_user
        )
        SELECT l.* FROM public.audit_log l
         WHERE (my_audit_log.table_name IS NULL OR l.table_name = my_audit_log.table_name)
           AND (k IS NULL OR strpos(l.row_key, k) > 0)
           AND (since IS NULL OR l.at >= since)
           AND l.row_key IS NOT NULL
           AND CASE WHEN l.table_name = 'admin_scopes'
                    -- "admin -> domain": a domain has no space, a role name may
                    THEN starts_with(l.row_key, session_user || ' -> ')
                         AND strpos(substr(l.row_key, length(session_user) + 5), ' ') = 0
                    ELSE NOT EXISTS (SELECT FROM unnest(public.audit_key_domains(l.table_name, l.row_key)) AS d (domain)
                                      WHERE d.domain IS NULL
                                         OR NOT EXISTS (SELECT FROM mine m WHERE m.domain = d.domain AND l.at >= m.granted))
               END
         ORDER BY l.id DESC LIMIT max_rows;
END
$$;
REVOKE ALL ON FUNCTION public.my_audit_log(text, text, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_audit_log(text, text, timestamptz, integer) TO maildomainadmin;

-- my_export() -> table(the columns of `mailbook import`'s CSV, in its order)
-- Caller: members of maildomainadmin (runner: `mailbook export` for a customer's admin;
-- the owner's export is mailbook/provisioning/bulk.py's EXPORT_QUERY, which this
-- follows: tests/test_admin_scopes_paths.py compares the two). Its domains' rows only,
-- by the rule at the top: domains and alias domains, mailboxes, aliases and catch-alls,
-- send-as grants, vacation replies. Never a password hash: mailadmin may not read them
-- either (only mailowner exports them), and a customer's admin who may set a mailbox's
-- password has no need of the user's old one; so its mailbox rows need a password
-- before the file can be imported elsewhere. Runs as mailowner; raises nothing.
CREATE FUNCTION public.my_export()
RETURNS TABLE (kind text, address text, destination text, password text, password_hash text, realname text,
               maildir text, quota_bytes bigint, transport text, gid integer, active boolean, quota_messages bigint,
               services_off text, max_mailboxes integer, max_aliases integer, max_quota_bytes bigint,
               subject text, body text, starts text, ends text, days integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH mine AS MATERIALIZED (SELECT public.managed_domains() AS domain)
SELECT r.kind, public.csv_cell_out(r.address), public.csv_cell_out(r.destination), NULL::text, NULL::text,
       public.csv_cell_out(r.realname), public.csv_cell_out(r.maildir), r.quota_bytes,
       r.transport, r.gid, r.active, r.quota_messages, r.services_off, r.max_mailboxes, r.max_aliases,
       r.max_quota_bytes, public.csv_cell_out(r.subject), public.csv_cell_out(r.body), r.starts, r.ends, r.days
  FROM (SELECT CASE WHEN t.alias_of IS NULL THEN 1 ELSE 2 END AS k, 'domain' AS kind, t.domain AS address,
               t.alias_of AS destination, NULL AS realname, NULL AS maildir, NULL::bigint AS quota_bytes,
               t.transport, t.gid, t.active, NULL::bigint AS quota_messages,
               array_to_string(t.disabled_services, ' ') AS services_off,
               t.max_mailboxes, t.max_aliases, t.max_quota_bytes,
               NULL AS subject, NULL AS body, NULL AS starts, NULL AS ends, NULL::integer AS days
          FROM public.transports t WHERE t.domain IN (SELECT m.domain FROM mine m)
        UNION ALL
        SELECT 3, 'mailbox', u.email, NULL, u.realname, u.maildir, u.quota_bytes, NULL, NULL, u.active,
               u.quota_messages, array_to_string(u.disabled_services, ' '), NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL
          FROM public.users u WHERE u.domain IN (SELECT m.domain FROM mine m)
        UNION ALL
        SELECT 4, 'alias', a.alias, a.email, NULL, NULL, NULL, NULL, NULL, a.active,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM public.aliases a WHERE a.domain IN (SELECT m.domain FROM mine m)
        UNION ALL
        SELECT 5, 'sendas', g.address, g.login, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM public.send_as g WHERE split_part(g.login, '@', 2) IN (SELECT m.domain FROM mine m)
        UNION ALL
        SELECT 6, 'vacation', v.email, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL, v.subject, v.body,
               rtrim(rtrim(to_char(v.starts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z',
               rtrim(rtrim(to_char(v.ends AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z',
               v.days
          FROM public.vacations v WHERE split_part(v.email, '@', 2) IN (SELECT m.domain FROM mine m)) r
 ORDER BY r.k, r.address, r.destination
$$;
REVOKE ALL ON FUNCTION public.my_export() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_export() TO maildomainadmin;

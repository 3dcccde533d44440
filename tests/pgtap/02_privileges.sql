-- Who may do what: the five roles and PUBLIC on the database, schema, every table and
-- column, and every function. Expected grants are listed once, below; everything not
-- listed must be absent. New columns and functions are covered automatically.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;

CREATE TEMP TABLE expected_columns (tbl text, col text, role text);
INSERT INTO expected_columns VALUES
    -- mailadmin: everything but password hashes ('*' = every column)
    ('transports', '*', 'mailadmin'), ('aliases', '*', 'mailadmin'),
    ('mailboxes', '*', 'mailadmin'), ('settings', '*', 'mailadmin'),
    ('audit_log', '*', 'mailadmin'), ('vacations', '*', 'mailadmin'), ('quota_usage', '*', 'mailadmin'),
    ('users', 'email', 'mailadmin'), ('users', 'realname', 'mailadmin'),
    ('users', 'maildir', 'mailadmin'), ('users', 'created', 'mailadmin'),
    ('users', 'domain', 'mailadmin'), ('users', 'quota_bytes', 'mailadmin'),
    ('users', 'active', 'mailadmin'), ('users', 'modified', 'mailadmin'),
    ('users', 'disabled_services', 'mailadmin'), ('users', 'quota_messages', 'mailadmin'),
    -- mailreader: no column at all; Postfix's maps call lookup functions (below)
    -- mailauth: what Dovecot's passdb and userdb read, hashes included
    ('users', 'email', 'mailauth'), ('users', 'password', 'mailauth'),
    ('users', 'maildir', 'mailauth'), ('users', 'domain', 'mailauth'),
    ('users', 'quota_bytes', 'mailauth'), ('users', 'active', 'mailauth'),
    ('transports', 'domain', 'mailauth'), ('transports', 'gid', 'mailauth'),
    ('transports', 'active', 'mailauth'),
    -- and the services a mailbox or its domain may not log in to
    ('users', 'disabled_services', 'mailauth'), ('transports', 'disabled_services', 'mailauth'),
    ('users', 'quota_messages', 'mailauth'),
    -- and the vacation scripts Sieve reads; of the table behind them, only whether a mailbox
    -- has a reply and until when (user_query answers the vacation dict only then)
    ('sieve_scripts', '*', 'mailauth'), ('sieve_delivery_scripts', '*', 'mailauth'),
    ('vacations', 'email', 'mailauth'), ('vacations', 'ends', 'mailauth'),
    -- app passwords (0212): Dovecot's second passdb reads its lookup; mailadmin all but token and hash
    ('app_passwords', 'email', 'mailauth'), ('app_passwords', 'token', 'mailauth'),
    ('app_passwords', 'hash', 'mailauth'), ('app_passwords', 'services', 'mailauth'),
    ('app_passwords', 'email', 'mailadmin'), ('app_passwords', 'name', 'mailadmin'),
    ('app_passwords', 'services', 'mailadmin'), ('app_passwords', 'created', 'mailadmin'),
    ('app_passwords', 'last_used', 'mailadmin'),
    -- login networks (0213): both passdbs return them as allow_nets; mailadmin reads users' too
    ('users', 'login_networks', 'mailauth'), ('transports', 'login_networks', 'mailauth'),
    ('users', 'login_networks', 'mailadmin'),
    -- password expiry (0215): the main passdb hands the date and both ages to
    -- password_expiry_check(); mailadmin reads users' too
    ('users', 'password_changed', 'mailauth'), ('users', 'password_max_age', 'mailauth'),
    ('transports', 'password_max_age', 'mailauth'),
    ('users', 'password_changed', 'mailadmin'), ('users', 'password_max_age', 'mailadmin');

CREATE TEMP VIEW column_matrix AS
SELECT c.table_name::text AS tbl, c.column_name::text AS col, r.role,
       CASE WHEN EXISTS (SELECT FROM expected_columns e
                          WHERE e.tbl = c.table_name AND e.col IN (c.column_name, '*') AND e.role = r.role)
            THEN ARRAY['SELECT'] ELSE '{}'::text[] END AS privs
  FROM information_schema.columns c
 CROSS JOIN (VALUES ('mailadmin'), ('mailreader'), ('mailauth')) AS r(role)
 WHERE c.table_schema = 'public' AND c.table_name IN ('transports', 'users', 'aliases', 'mailboxes', 'settings', 'audit_log',
                                                     'vacations', 'sieve_scripts', 'sieve_delivery_scripts',
                                                     'app_passwords');

CREATE TEMP VIEW api AS
SELECT p.oid, p.proname::text AS name,
       array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS args,
       p.proname IN ('add_domain', 'remove_domain', 'set_domain_active', 'add_mailbox',
                     'add_mailbox_hashed', 'set_password', 'hash_password',
                     'remove_mailbox', 'set_mailbox_active', 'add_alias', 'remove_alias', 'add_alias_domain',
                     'allow_send_as', 'disallow_send_as', 'set_mailbox_service', 'set_domain_service',
                     'service_list_error', 'set_mailbox_quota', 'set_domain_limits',
                     'queued_maildirs', 'claim_maildir', 'forget_maildir',
                     'quoted', 'domain_name_error', 'address_error', 'alias_error', 'maildir_error',
                     'transport_error', 'password_hash_error', 'password_error',
                     'normalised_password_hash', 'default_maildir', 'realname_error',
                     'import_batch', 'postfix_virtual', 'postfix_sender_logins', 'is_relay_transport',
                     'postfix_mailbox_domain', 'postfix_mailbox', 'postfix_transport', 'postfix_relay_domain',
                     'password_policy_error', 'set_vacation', 'clear_vacation', 'compiled_map_rows',
                     'compiled_map_changes', 'compiled_map_lag', 'prune_map_changes',
                     'auth_cache_changed_users', 'prune_auth_cache_changes',
                     'new_mailbox', 'existing_mailbox', 'dovecot_service_allowed',
                     -- scoped admins (0207): every scope is mailadmin's to grant and read
                     'managed_domains', 'admin_may_manage', 'require_domain_scope', 'my_mailboxes',
                     'my_mailbox', 'my_aliases', 'my_vacations',
                     'domain_admins', 'grant_domain_admin', 'revoke_domain_admin',
                     -- resellers (0208)
                     'make_reseller', 'unmake_reseller', 'resellers', 'whoami', 'my_domains',
                     -- scoped reads (sql/api/55_send_as.sql)
                     'my_send_as', 'who_may_send_as',
                     'set_mailbox_quota_cap',
                     -- DKIM keys (0209): public parts only; private keys go in by COPY
                     'add_dkim_key', 'activate_dkim_key', 'retire_dkim_key', 'dkim_keys_list', 'dkim_dns_records',
                     -- DKIM rotation (0217)
                     'rotate_dkim_key', 'dkim_rotations', 'advance_dkim_key', 'retire_dkim_keys_due',
                     -- last logins (0210)
                     'stale_mailboxes',
                     -- app passwords and forwards (issue 33)
                     'add_app_password', 'app_passwords_list', 'revoke_app_password', 'main_password_allowed',
                     'set_forward', 'forward_of', 'clear_forward',
                     -- login networks (0213)
                     'set_login_networks', 'clear_login_networks', 'login_networks',
                     -- delete with a grace period (0214)
                     'restore_mailbox', 'removed_mailboxes_list', 'expire_removed_mailboxes',
                     -- password expiry (0215)
                     'set_password_max_age', 'clear_password_max_age', 'password_max_age', 'passwords_expiring',
                     'password_expiry_check',
                     -- renaming a mailbox (0216)
                     'rename_mailbox') AS for_mailadmin,
       p.proname IN ('postfix_virtual', 'postfix_sender_logins', 'is_relay_transport',
                     'postfix_mailbox_domain', 'postfix_mailbox', 'postfix_transport', 'postfix_relay_domain',
                     'compiled_map_rows', 'compiled_map_changes', 'compiled_map_lag') AS for_mailreader,
       -- what the view sieve_scripts calls as its reader: pure text functions; and
       -- password_query's service allow-list; the change record `dovecot follow` reads and prunes
       p.proname IN ('sieve_string', 'vacation_script', 'dovecot_service_allowed', 'main_password_allowed',
                     'password_expiry_check', 'auth_cache_changed_users', 'prune_auth_cache_changes') AS for_mailauth
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e');

SELECT plan(29 + (SELECT count(*)::int FROM column_matrix) + 3 * (SELECT count(*)::int FROM api));
\ir _setup.sql

-- the database
SELECT database_privs_are(current_database(), r, ARRAY['CONNECT'], format('%s may connect, nothing more', r))
  FROM unnest(ARRAY['mailadmin', 'mailreader', 'mailauth']) AS r;
SELECT ok(NOT has_database_privilege('public', current_database(), 'CONNECT'), 'PUBLIC may not connect');
SELECT ok(NOT has_database_privilege('public', current_database(), 'TEMPORARY'), 'PUBLIC may not create temp tables');
SELECT ok(NOT has_database_privilege('public', current_database(), 'CREATE'), 'PUBLIC may not create schemas');

-- schema public
SELECT schema_privs_are('public', r, ARRAY['USAGE'], format('%s may use schema public but not create in it', r))
  FROM unnest(ARRAY['mailadmin', 'mailreader', 'mailauth']) AS r;
SELECT ok(NOT has_schema_privilege('public', 'public', 'USAGE'), 'PUBLIC may not use schema public');
SELECT ok(NOT has_schema_privilege('public', 'public', 'CREATE'), 'PUBLIC may not create in schema public');

-- the roles themselves
SELECT ok(NOT rolcanlogin, format('%s cannot log in', rolname)) FROM pg_roles
 WHERE rolname IN ('mailowner', 'mailadmin') ORDER BY rolname;
SELECT ok(rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb,
          format('%s logs in and holds no special attribute', rolname)) FROM pg_roles
 WHERE rolname IN ('mailreader', 'mailauth', 'mailquota') ORDER BY rolname;
SELECT isnt_superuser(r, format('%s is not a superuser', r))
  FROM unnest(ARRAY['mailowner', 'mailadmin']) AS r;

-- tables: nobody but the owner holds a table-wide privilege other than mailadmin's SELECT
SELECT is(array(SELECT format('%s %s %s', g.grantee, g.privilege_type, g.table_name)
                  FROM information_schema.role_table_grants g
                 WHERE g.table_schema = 'public' AND g.grantee <> 'mailowner' ORDER BY 1),
          ARRAY['mailadmin SELECT aliases', 'mailadmin SELECT audit_log', 'mailadmin SELECT former_addresses', 'mailadmin SELECT last_logins',
                'mailadmin SELECT mailboxes', 'mailadmin SELECT quota_usage', 'mailadmin SELECT send_as',
                'mailadmin SELECT settings', 'mailadmin SELECT transports', 'mailadmin SELECT vacations',
                'mailauth SELECT sieve_delivery_scripts', 'mailauth SELECT sieve_scripts',
                'maildkim SELECT dkim_signing'],
          'the only table-wide grants are mailadmin''s SELECTs (and the two service views); users and the staging tables are granted column by column');
SELECT ok(NOT EXISTS (SELECT FROM pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
                       WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
                         AND has_table_privilege('public', c.oid, p)),
          'PUBLIC holds no privilege on any table or view');
SELECT ok(NOT EXISTS (SELECT FROM information_schema.column_privileges g
                       WHERE g.table_schema = 'public' AND g.grantee IN ('mailadmin', 'mailreader', 'mailauth')
                         AND g.privilege_type <> 'SELECT' AND g.table_name NOT IN ('import_staging', 'dkim_key_staging')),
          'no service or admin role may write any column of a real table');
SELECT is(array(SELECT a.attname::text FROM pg_attribute a
                  WHERE a.attrelid = 'public.import_staging'::regclass AND a.attnum > 0 AND NOT a.attisdropped
                    AND NOT has_column_privilege('mailadmin', a.attrelid, a.attnum, 'INSERT') ORDER BY 1),
          ARRAY['batch', 'seq'],
          'mailadmin may stage every column of a file, never batch or seq: its rows are its own transaction''s');
SELECT ok(NOT has_function_privilege('mailadmin', 'public.verify_password(text, text)', 'EXECUTE'),
          'mailadmin may not verify passwords: it provisions, it does not test guesses');
SELECT ok(NOT has_table_privilege('mailadmin', 'public.import_staging', 'SELECT'),
          'mailadmin may stage an import but not read staged rows (plaintext passwords)');
SELECT ok(NOT has_table_privilege('mailreader', 'public.map_changes', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
          AND NOT has_table_privilege('mailreader', 'public.map_changes_horizon', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'),
          'mailreader (`maps follow`) may neither read nor write the change record: it asks compiled_map_changes()');
SELECT ok(NOT has_function_privilege('mailreader', 'public.prune_map_changes(interval)', 'EXECUTE'),
          'mailreader may not prune the change record: the follower stays read-only');
SELECT ok(NOT has_table_privilege('mailauth', 'public.auth_cache_changes', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
          AND NOT has_table_privilege('mailauth', 'public.auth_cache_changes_horizon', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'),
          'mailauth (`dovecot follow`) may neither read nor write its change record: it asks auth_cache_changed_users()');

-- every column, for each role
SELECT column_privs_are('public', tbl, col, role, privs,
                        format('%s %s %s.%s', role, CASE WHEN privs = '{}' THEN 'may not read' ELSE 'may read' END, tbl, col))
  FROM column_matrix ORDER BY tbl, col, role;

-- every function: mailadmin executes the API, the service roles nothing
SELECT function_privs_are('public', name, args, 'mailadmin',
                          CASE WHEN for_mailadmin THEN ARRAY['EXECUTE'] ELSE '{}'::text[] END,
                          format('mailadmin %s execute %s', CASE WHEN for_mailadmin THEN 'may' ELSE 'may not' END, name))
  FROM api ORDER BY name;
SELECT ok(has_function_privilege('mailreader', oid, 'EXECUTE') = for_mailreader
          AND has_function_privilege('mailauth', oid, 'EXECUTE') = for_mailauth
          AND NOT has_function_privilege('mailquota', oid, 'EXECUTE'),
          format('%s execute %s', CASE WHEN for_mailreader THEN 'only mailreader (Postfix''s lookups) may'
                                       WHEN for_mailauth THEN 'only mailauth (the view sieve_scripts, `dovecot follow`) may'
                                       ELSE 'no service role may' END, name))
  FROM api ORDER BY name;
SELECT ok(NOT has_function_privilege('public', oid, 'EXECUTE'), format('PUBLIC may not execute %s', name))
  FROM api ORDER BY name;

-- SECURITY DEFINER functions: pinned search_path
SELECT is(array(SELECT p.proname::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
                   AND p.prosecdef AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']
                 ORDER BY 1),
          '{}'::text[], 'every SECURITY DEFINER function pins search_path = pg_catalog, pg_temp');
SELECT is(array(SELECT p.proname::text FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
                   AND p.prosecdef AND pg_get_userbyid(p.proowner) <> 'mailowner' ORDER BY 1),
          '{}'::text[], 'every SECURITY DEFINER function is owned by mailowner');

SELECT * FROM finish();
ROLLBACK;

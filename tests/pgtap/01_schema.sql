-- The tables keep the tutorial's names and columns, with integrity in the tables.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(51);
\ir _setup.sql

SELECT has_extension('pgcrypto', 'pgcrypto is installed');
SELECT extensions_are('public', ARRAY[]::name[], 'no extension lives in public');
SELECT extensions_are('crypto', ARRAY['pgcrypto'], 'pgcrypto lives in schema crypto, which only mailowner may use');
SELECT tables_are('public',
    ARRAY['settings', 'transports', 'users', 'aliases', 'send_as', 'maildir_purge_queue', 'maildir_roots', 'import_staging', 'audit_log',
          'password_attempts', 'quota_usage', 'vacations', 'map_changes', 'map_changes_horizon',
          'auth_cache_changes', 'auth_cache_changes_horizon', 'admin_scopes', 'resellers', 'dkim_keys', 'dkim_key_staging',
          'last_logins', 'app_passwords', 'removed_mailboxes', 'former_addresses', '_yoyo_log', '_yoyo_migration', '_yoyo_version', 'yoyo_lock'],
    'public holds our tables and yoyo''s bookkeeping, nothing else');
SELECT views_are('public', ARRAY['mailboxes', 'import_rows', 'import_lines', 'nested_maildirs', 'sieve_scripts',
                                  'sieve_delivery_scripts', 'dkim_signing'],
                 'the views: mailboxes, import_rows, import_lines, nested_maildirs, sieve_scripts, sieve_delivery_scripts and dkim_signing');
SELECT is((SELECT relpersistence FROM pg_class WHERE oid = 'public.import_staging'::regclass), 'u'::"char",
          'import_staging is UNLOGGED: staged plaintext passwords never reach the WAL');

SELECT table_owner_is('public', t, 'mailowner', format('mailowner owns %s', t))
  FROM unnest(ARRAY['settings', 'transports', 'users', 'aliases', 'send_as', 'audit_log', '_yoyo_migration']) AS t;
SELECT view_owner_is('public', 'mailboxes', 'mailowner', 'mailowner owns mailboxes');

-- transports: the tutorial's (domain, gid, transport), gid no longer UNIQUE NOT NULL
SELECT col_is_pk('public', 'transports', 'domain', 'transports keyed by domain');
SELECT col_is_null('public', 'transports', 'gid', 'transports.gid is optional');
SELECT col_is_fk('public', 'transports', 'alias_of', 'an alias domain names its target in transports');
SELECT col_has_check('public', 'aliases', 'alias', 'aliases.alias is checked (an address or an @domain catch-all)');
SELECT ok(NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'public.transports'::regclass
                         AND contype = 'u'), 'transports.gid is not UNIQUE: domains may share a vmail group');
SELECT col_default_is('public', 'transports', 'transport', 'virtual:', 'transport defaults to virtual:');
SELECT col_not_null('public', 'transports', 'active', 'transports.active is NOT NULL');

-- users: the tutorial's columns first, in its order
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'public.users'::regclass AND attnum > 0 AND NOT attisdropped),
          ARRAY['email', 'password', 'realname', 'maildir', 'created', 'domain', 'quota_bytes',
                'active', 'modified', 'disabled_services', 'quota_messages', 'login_networks',
                'password_changed', 'password_max_age'],
          'users has the tutorial''s columns first, in its order, then ours');
SELECT col_is_pk('public', 'users', 'email', 'users keyed by email');
SELECT col_not_null('public', 'users', c, format('users.%s is NOT NULL', c))
  FROM unnest(ARRAY['password', 'maildir', 'domain', 'active']) AS c;
SELECT col_is_null('public', 'users', 'realname', 'users.realname may be left blank');
SELECT col_is_unique('public', 'users', ARRAY['maildir'], 'two mailboxes never share a maildir');
-- a mailbox's or alias's domain must be hosted: checked per statement (0013), not by a
-- per-row foreign key
SELECT trigger_is('public', 'users', t, 'public', 'refuse_unhosted_domains',
                  format('users trigger %s checks that domains are hosted', t))
  FROM unnest(ARRAY['users_domain_hosted', 'users_domain_hosted_on_update']) AS t;
SELECT col_type_is('public', 'users', 'quota_bytes', 'bigint', 'quota in bytes is a bigint');
SELECT has_index('public', 'users', 'users_domain_idx', ARRAY['domain'], 'users indexed by domain');

-- aliases: one row per destination
SELECT col_is_pk('public', 'aliases', ARRAY['alias', 'email'], 'aliases keyed by (alias, destination)');
SELECT trigger_is('public', 'aliases', t, 'public', 'refuse_unhosted_domains',
                  format('aliases trigger %s checks that domains are hosted', t))
  FROM unnest(ARRAY['aliases_domain_hosted', 'aliases_domain_hosted_on_update']) AS t;
SELECT trigger_is('public', 'transports', t, 'public', 'refuse_orphaning_domains',
                  format('transports trigger %s keeps domains that are in use', t))
  FROM unnest(ARRAY['transports_keep_used_domains', 'transports_keep_used_domains_on_update',
                    'transports_keep_used_domains_on_truncate']) AS t;
SELECT has_index('public', 'aliases', 'aliases_email_idx', ARRAY['email'], 'aliases indexed by destination');

-- CHECK constraints on every value that Postfix or Dovecot will read
SELECT col_has_check('public', t, c, format('%s.%s has a CHECK', t, c))
  FROM (VALUES ('transports', 'domain'), ('transports', 'transport'), ('transports', 'gid'),
               ('users', 'email'), ('users', 'password'), ('users', 'maildir'), ('users', 'realname'),
               ('users', 'quota_bytes'), ('aliases', 'alias'), ('aliases', 'email')) AS v(t, c);

SELECT is((SELECT bcrypt_cost FROM settings), 10, 'bcrypt cost defaults to 10');

SELECT * FROM finish();
ROLLBACK;

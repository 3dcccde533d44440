-- `mailbook doctor`: what a live server says about itself, one row per check:
-- (check, status pass|warn|fail, detail). Run in the mail database. Reads only.

-- the server and how it stores passwords
SELECT 'PostgreSQL version' AS check_name,
       CASE WHEN current_setting('server_version_num')::int >= 130000 THEN 'pass' ELSE 'fail' END AS status,
       current_setting('server_version') AS detail
UNION ALL
SELECT 'password_encryption',
       CASE WHEN current_setting('password_encryption') = 'scram-sha-256' THEN 'pass' ELSE 'fail' END,
       current_setting('password_encryption') || ' (passwords set from now on are stored this way)'
UNION ALL
-- pgcrypto, which add_mailbox's bcrypt needs
SELECT 'pgcrypto',
       CASE WHEN e.extversion IS NOT NULL THEN 'pass' ELSE 'fail' END,
       coalesce('version ' || e.extversion, 'not installed in this database: run mailbook migrate apply')
  FROM (SELECT NULL) one LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'pgcrypto'
UNION ALL
-- the six roles, with login where it belongs (whether a login role has a password shows
-- in the map files check: a map that cannot log in does not answer)
SELECT 'role ' || r.name,
       CASE WHEN a.rolname IS NULL OR a.rolcanlogin <> r.login THEN 'fail' ELSE 'pass' END,
       CASE WHEN a.rolname IS NULL THEN 'missing: run mailbook init'
            WHEN a.rolcanlogin <> r.login THEN CASE WHEN r.login THEN 'cannot log in' ELSE 'can log in, but must not' END
            WHEN r.login THEN 'login' ELSE 'no login' END
  FROM (VALUES ('mailowner', false), ('mailadmin', false), ('maildomainadmin', false), ('mailreader', true), ('mailauth', true),
               ('mailquota', true),
               ('mailwebmail', true), ('maildkim', true)) AS r(name, login)
  LEFT JOIN pg_catalog.pg_roles a ON a.rolname = r.name
UNION ALL
-- privileges: the promises the rest depends on
SELECT 'PUBLIC may use nothing',
       CASE WHEN bad IS NULL THEN 'pass' ELSE 'fail' END, coalesce(bad, 'no CONNECT, no schema use, no table, no function')
  FROM (SELECT string_agg(what, ', ') AS bad FROM (
          SELECT 'CONNECT' AS what WHERE pg_catalog.has_database_privilege('public', current_database(), 'CONNECT')
          UNION ALL SELECT 'USAGE on schema public' WHERE pg_catalog.has_schema_privilege('public', 'public', 'USAGE')
          UNION ALL SELECT 'CREATE on schema public' WHERE pg_catalog.has_schema_privilege('public', 'public', 'CREATE')
          UNION ALL SELECT 'SELECT on ' || c.relname FROM pg_catalog.pg_class c
                     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
                       AND pg_catalog.has_table_privilege('public', c.oid, 'SELECT')) x) p
UNION ALL
SELECT 'service roles write nothing',
       CASE WHEN bad IS NULL THEN 'pass' ELSE 'fail' END,
       coalesce(bad, 'mailreader and mailauth only read; mailquota writes only usage rows (quota_usage) and last logins (last_logins); mailwebmail and maildkim touch no table')
  FROM (SELECT string_agg(r || ' may ' || priv || ' ' || c.relname, ', ') AS bad
          FROM unnest(ARRAY['mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim']) AS r
         CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS priv
          JOIN pg_catalog.pg_class c ON c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
         WHERE EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r)
           -- a column grant is a write too
           AND CASE WHEN priv IN ('INSERT', 'UPDATE') THEN pg_catalog.has_any_column_privilege(r, c.oid, priv)
                    ELSE pg_catalog.has_table_privilege(r, c.oid, priv) END
           -- Dovecot's quota_clone upsert, the one write a service role needs
           -- and its last_login upsert (migration 0210)
           AND NOT (r = 'mailquota' AND c.oid IN (to_regclass('public.quota_usage'), to_regclass('public.last_logins'))
                    AND priv IN ('INSERT', 'UPDATE'))) p
UNION ALL
-- mailwebmail's calls carry passwords (the current and the new one): its role settings
-- keep them out of the server log and pg_stat_activity, whatever the server logs for
-- others (sql/roles.sql, the same list). A setting of the role in this database
-- (ALTER ROLE ... IN DATABASE) would override them: that fails too.
SELECT 'mailwebmail statements unlogged',
       CASE WHEN missing IS NULL THEN 'pass' ELSE 'fail' END,
       coalesce('not pinned: ' || missing || '; run mailbook init as a superuser'
                || ' (and ALTER ROLE mailwebmail IN DATABASE ' || pg_catalog.quote_ident(current_database())
                || ' RESET ALL, if set there)',
                'every logging setting that could show its passwords is pinned (' || n || ' settings)')
  FROM (SELECT string_agg(w, ', ') FILTER (WHERE NOT pinned) AS missing, count(*) AS n
          FROM (SELECT w, EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s
                                   WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'mailwebmail')
                                     AND s.setdatabase = 0 AND w = ANY (s.setconfig))
                      AND NOT EXISTS (SELECT FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS c
                                       WHERE s.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'mailwebmail')
                                         AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database
                                                               WHERE datname = current_database())
                                         AND split_part(c, '=', 1) = split_part(w, '=', 1)) AS pinned
                  FROM unnest(ARRAY['log_statement=none', 'log_min_duration_statement=-1',
                                    'log_min_duration_sample=-1', 'log_statement_sample_rate=0',
                                    'log_transaction_sample_rate=0', 'log_min_error_statement=panic',
                                    'log_parameter_max_length=0', 'log_parameter_max_length_on_error=0',
                                    'log_duration=off', 'debug_print_parse=off', 'debug_print_rewritten=off',
                                    'debug_print_plan=off', 'track_activities=off',
                                    'auto_explain.log_min_duration=-1', 'pg_stat_statements.track=none']) AS w) k) m
 WHERE EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mailwebmail')
UNION ALL
SELECT 'password hashes',
       CASE WHEN NOT reader AND auth AND NOT admin AND NOT webmail THEN 'pass' ELSE 'fail' END,
       format('readable by mailauth: %s; by mailreader: %s; by mailadmin: %s; by mailwebmail: %s'
              ' (expected yes, no, no, no)',
              CASE WHEN auth THEN 'yes' ELSE 'no' END, CASE WHEN reader THEN 'yes' ELSE 'no' END,
              CASE WHEN admin THEN 'yes' ELSE 'no' END, CASE WHEN webmail THEN 'yes' ELSE 'no' END)
  FROM (SELECT bool_or(r = 'mailreader' AND ok) AS reader, bool_or(r = 'mailauth' AND ok) AS auth,
               bool_or(r = 'mailadmin' AND ok) AS admin, coalesce(bool_or(r = 'mailwebmail' AND ok), false) AS webmail
          FROM (SELECT r, pg_catalog.has_column_privilege(r, 'public.users', 'password', 'SELECT') AS ok
                  FROM unnest(ARRAY['mailreader', 'mailauth', 'mailadmin', 'mailwebmail']) AS r
                 WHERE to_regclass('public.users') IS NOT NULL
                   AND EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r)) x) p
 WHERE to_regclass('public.users') IS NOT NULL
UNION ALL
-- replication: a standby says how far behind it is; a primary lists its standbys
SELECT 'replication',
       CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN 'pass'
            WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver w WHERE w.status = 'streaming') THEN 'warn'
            WHEN now() - pg_catalog.pg_last_xact_replay_timestamp() > interval '5 minutes'
             AND pg_catalog.pg_last_wal_receive_lsn() <> pg_catalog.pg_last_wal_replay_lsn() THEN 'warn'
            ELSE 'pass' END,
       CASE WHEN pg_catalog.pg_is_in_recovery() THEN
                'standby (read-only): '
                || CASE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_stat_wal_receiver w WHERE w.status = 'streaming')
                        THEN 'not receiving WAL from a primary'
                        ELSE 'replay ' || pg_catalog.pg_size_pretty(pg_catalog.pg_wal_lsn_diff(
                                 pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn()))
                             || ' behind what it received' END
                || coalesce('; last change replayed ' || date_trunc('second', now() - pg_catalog.pg_last_xact_replay_timestamp())
                            || ' ago', '')
            ELSE coalesce((SELECT 'primary; ' || count(*) || ' standby(s): '
                                  || string_agg(coalesce(s.application_name, '?') || ' ' || s.state
                                                || ', replay lag ' || coalesce(s.replay_lag::text, '0'), '; ')
                             FROM pg_catalog.pg_stat_replication s HAVING count(*) > 0),
                          'primary; no standby connected') END

-- The webmail's login, mailwebmail (issue 20): it may connect, look names up in schema
-- public and EXECUTE change_password(), nothing else: no table, no other function, no
-- hash, no pgcrypto, no temporary table. change_password() reports each refusal as a
-- result row with its own SQLSTATE (an error would roll back the count of failures and
-- the audit row), applies the policy in settings and bounds guessing.
-- A refused SET ROLE and the role's own settings need a real login: tests/test_change_password.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;

CREATE TEMP VIEW webmail_functions AS
SELECT p.oid, p.proname::text AS name, p.oid::regprocedure::text AS signature
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e');

SELECT plan(25 + (SELECT count(*)::int FROM webmail_functions));
\ir _setup.sql

-- 1. the role and its privileges
SELECT has_role('mailwebmail', 'role mailwebmail exists');
SELECT ok(rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb AND NOT rolreplication
          AND NOT rolbypassrls, 'mailwebmail logs in and holds no special attribute')
  FROM pg_roles WHERE rolname = 'mailwebmail';
SELECT is(array(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                 WHERE m.member = 'mailwebmail'::regrole), '{}'::text[], 'mailwebmail is a member of no role');
SELECT database_privs_are(current_database(), 'mailwebmail', ARRAY['CONNECT'], 'mailwebmail may connect, nothing more');
SELECT schema_privs_are('public', 'mailwebmail', ARRAY['USAGE'], 'mailwebmail may use schema public but not create in it');
SELECT ok(NOT has_schema_privilege('mailwebmail', 'crypto', 'USAGE'), 'mailwebmail may not use pgcrypto');
SELECT is(array(SELECT c.relname::text FROM pg_class c,
                       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'p')
                   AND has_table_privilege('mailwebmail', c.oid, p)),
          '{}'::text[], 'mailwebmail holds no privilege on any table or view');
SELECT ok(NOT EXISTS (SELECT FROM information_schema.column_privileges g
                       WHERE g.table_schema = 'public' AND g.grantee = 'mailwebmail'),
          'nor on any column: no hash');
SELECT ok(NOT EXISTS (SELECT FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
                         AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege('mailwebmail', c.oid, 'USAGE') END),
          'nor on any sequence');
SELECT ok(has_function_privilege('mailwebmail', oid, 'EXECUTE') = (name = 'change_password'),
          format('mailwebmail %s execute %s', CASE WHEN name = 'change_password' THEN 'may' ELSE 'may not' END, signature))
  FROM webmail_functions ORDER BY signature;

-- 2. what change_password() answers, called as mailwebmail
SET ROLE alice;
SELECT add_domain('example.com');
SELECT * FROM add_mailbox('foo@example.com', 'foo old passphrase');
SET ROLE mailwebmail;
SELECT throws_ok($$SELECT email FROM users$$, '42501', NULL, 'mailwebmail may not read users');
SELECT throws_ok($$SELECT public.set_password('foo@example.com', 'whatever it is 1')$$, '42501', NULL,
                 'mailwebmail may not set a password without the current one');
SELECT results_eq($$SELECT * FROM change_password('foo@example.com', 'wrong', 'foo new passphrase 1')$$,
                  $$VALUES (false, '28P01', 'the current password is wrong')$$,
                  'a wrong current password: 28P01, as a row');
SELECT results_eq($$SELECT * FROM change_password('foo@example.com', 'foo old passphrase', 'short')$$,
                  $$VALUES (false, 'MB001', 'the new password must have at least 12 characters')$$,
                  'too short: MB001');
SELECT results_eq($$SELECT * FROM change_password('foo@example.com', 'foo old passphrase', 'foo old passphrase')$$,
                  $$VALUES (false, 'MB002', 'the new password must differ from the current one')$$,
                  'the same as the current one: MB002');
SELECT results_eq($$SELECT * FROM change_password('foo@example.com', 'foo old passphrase', 'my name is FOO, ok?')$$,
                  $$VALUES (false, 'MB003', 'the new password must not contain "foo", the name in the address')$$,
                  'the local part inside it: MB003');
SELECT results_eq($$SELECT * FROM change_password('foo@example.com', NULL, 'a fine new passphrase')$$,
                  $$VALUES (false, '22004', 'the address, the current and the new password must not be NULL')$$,
                  'NULL: 22004');
SELECT results_eq($$SELECT 1 FROM change_password('foo@example.com', 'wrong', 'a fine new passphrase') WHERE changed$$,
                  'SELECT 1 WHERE false', 'Roundcube''s query returns no row for a refusal (its driver: failure)');
SELECT results_eq($$SELECT * FROM change_password('FOO@example.com', 'foo old passphrase', 'a fine new passphrase')$$,
                  $$VALUES (true, '00000', 'password changed')$$,
                  'the right current password and a good new one: changed (the address in any case)');
RESET ROLE;
SELECT ok(verify_password('foo@example.com', 'a fine new passphrase'), 'the new password is stored');
SELECT is((SELECT count(*) FROM password_failures), 0::bigint, 'the right current password cleared the failures');

-- 3. the guessing bound: five failures in the window, then no check at all
SET ROLE mailwebmail;
SELECT change_password('foo@example.com', 'guess ' || n, 'another passphrase') FROM generate_series(1, 5) AS n;
SELECT results_eq($$SELECT changed, code FROM change_password('foo@example.com', 'a fine new passphrase', 'another passphrase')$$,
                  $$VALUES (false, 'MB004')$$, 'the sixth attempt is refused by the limit, right password or not');
RESET ROLE;
SELECT results_eq($$SELECT split_part(reason, ':', 1) FROM audit_log WHERE operation = 'REFUSED'
                     AND row_key = 'foo@example.com' ORDER BY id DESC LIMIT 6$$,
                  $$VALUES ('MB004'), ('28P01'), ('28P01'), ('28P01'), ('28P01'), ('28P01')$$,
                  'the audit log shows the five failures and the refusal');
SELECT is((SELECT array_agg(DISTINCT login_role || '/' || acting_role) FROM audit_log WHERE operation = 'REFUSED'),
          ARRAY['postgres/mailwebmail'], 'each refusal names the login and the role it acted as');
SELECT is((SELECT count(*) FROM audit_log WHERE reason ~* 'passphrase|guess'), 0::bigint,
          'no password in any audit row');

-- 4. the settings are mailowner's
SET ROLE alice;
SELECT throws_ok($$UPDATE settings SET password_max_failures = 1000$$, '42501', NULL,
                 'a help-desk account cannot loosen the guessing bound');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

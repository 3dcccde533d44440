-- The webmail's login, mailwebmail (issue 20): it may connect, look names up in schema
-- public and EXECUTE check_current_password() and change_password(), nothing else: no
-- table, no other function, no hash, no pgcrypto, no temporary table. The check counts
-- and audits a guess and answers only a ticket; change_password() tells the outcome for
-- a ticket an earlier transaction committed (issue 28: a rolled-back guess tells
-- nothing), reports each refusal as a row with its own SQLSTATE, applies the policy in
-- settings and bounds guessing. A committed check is played here by a row with another
-- transaction's id; tests/test_change_password.py commits for real.
-- A refused SET ROLE and the role's own settings need a real login: tests/test_change_password.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;

CREATE TEMP VIEW webmail_functions AS
SELECT p.oid, p.proname::text AS name, p.oid::regprocedure::text AS signature
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e');

SELECT plan(34 + (SELECT count(*)::int FROM webmail_functions));
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
SELECT ok(has_function_privilege('mailwebmail', oid, 'EXECUTE') = (name IN ('change_password', 'check_current_password')),
          format('mailwebmail %s execute %s', CASE WHEN name IN ('change_password', 'check_current_password')
                                                   THEN 'may' ELSE 'may not' END, signature))
  FROM webmail_functions ORDER BY signature;

-- 2. what the two calls answer, as mailwebmail
SET ROLE alice;
SELECT add_domain('example.com');
SELECT * FROM add_mailbox('foo@example.com', 'foo old passphrase');
SET ROLE mailwebmail;
SELECT throws_ok($$SELECT email FROM users$$, '42501', NULL, 'mailwebmail may not read users');
SELECT throws_ok($$SELECT public.set_password('foo@example.com', 'whatever it is 1')$$, '42501', NULL,
                 'mailwebmail may not set a password without the current one');
SELECT results_eq($$SELECT ticket IS NOT NULL, code FROM check_current_password('foo@example.com', 'wrong')$$,
                  $$VALUES (true, '00000')$$, 'a wrong current password: a ticket, the outcome not told');
SELECT results_eq($$SELECT ticket IS NOT NULL, code FROM check_current_password('foo@example.com', 'foo old passphrase')$$,
                  $$VALUES (true, '00000')$$, 'the right one: a ticket just the same');
SELECT results_eq($$SELECT ticket IS NOT NULL, code FROM check_current_password('nobody@example.com', 'foo old passphrase')$$,
                  $$VALUES (true, '00000')$$, 'no such mailbox: a ticket just the same');
SELECT results_eq($$SELECT c.* FROM check_current_password('foo@example.com', 'foo old passphrase') k,
                                    change_password('foo@example.com', k.ticket, 'a fine new passphrase') c$$,
                  $$VALUES (false, 'MB006', 'this check is unknown, expired or not yet committed: check the current password again')$$,
                  'a ticket of the same transaction tells nothing: MB006');
SELECT results_eq($$SELECT code, ticket IS NULL FROM check_current_password(repeat('a', 300) || '@example.com', 'x')$$,
                  $$VALUES ('22023', true)$$, 'an oversized address is refused before anything is written');
SELECT results_eq($$SELECT code, message FROM check_current_password('foo@example.com', NULL)$$,
                  $$VALUES ('22004', 'the address and the current password must not be NULL')$$, 'NULL: 22004');
RESET ROLE;
SELECT is((SELECT count(*) FROM password_attempts WHERE email LIKE 'aaa%'), 0::bigint, 'no attempt of an oversized address');
-- committed checks, as another transaction would have left them
CREATE TEMP TABLE t (name text, ticket uuid);
GRANT SELECT ON t TO mailwebmail;
WITH a AS (INSERT INTO password_attempts (email, matched, txid)
           SELECT 'foo@example.com', true, '1' FROM generate_series(1, 4) RETURNING id, ticket)
INSERT INTO t SELECT CASE row_number() OVER (ORDER BY id) WHEN 1 THEN 'right' ELSE 'right' || row_number() OVER (ORDER BY id) END,
                     ticket FROM a;
INSERT INTO password_attempts (email, matched, txid) VALUES ('foo@example.com', false, '1') RETURNING ticket \gset wrong_
INSERT INTO t VALUES ('wrong', :'wrong_ticket');
INSERT INTO password_attempts (email, matched, txid, at) VALUES ('foo@example.com', true, '1', now() - interval '2 minutes')
    RETURNING ticket \gset old_
INSERT INTO t VALUES ('old', :'old_ticket');
SET ROLE mailwebmail;
SELECT results_eq($$SELECT c.* FROM t, change_password('foo@example.com', t.ticket, 'a fine new passphrase') c WHERE t.name = 'wrong'$$,
                  $$VALUES (false, '28P01', 'the current password is wrong')$$, 'a committed wrong guess: 28P01');
SELECT results_eq($$SELECT c.code FROM t, change_password('foo@example.com', t.ticket, 'a fine new passphrase') c WHERE t.name = 'old'$$,
                  $$VALUES ('MB006')$$, 'a ticket older than 60 s: MB006');
SELECT results_eq($$SELECT c.code FROM t, change_password('bar@example.com', t.ticket, 'a fine new passphrase') c WHERE t.name = 'right'$$,
                  $$VALUES ('MB006')$$, 'a ticket of another address: MB006');
SELECT results_eq($$SELECT c.* FROM t, change_password('foo@example.com', t.ticket, 'short') c WHERE t.name = 'right'$$,
                  $$VALUES (false, 'MB001', 'the new password must have at least 12 characters')$$, 'too short: MB001');
SELECT results_eq($$SELECT c.* FROM t, change_password('foo@example.com', t.ticket, 'foo old passphrase') c WHERE t.name = 'right2'$$,
                  $$VALUES (false, 'MB002', 'the new password must differ from the current one')$$,
                  'the same as the current one: MB002');
SELECT results_eq($$SELECT c.* FROM t, change_password('foo@example.com', t.ticket, 'my name is FOO, ok?') c WHERE t.name = 'right3'$$,
                  $$VALUES (false, 'MB003', 'the new password must not contain "foo", the name in the address')$$,
                  'the local part inside it: MB003');
SELECT results_eq($$SELECT c.* FROM t, change_password('FOO@example.com', t.ticket, 'a fine new passphrase') c WHERE t.name = 'right4'$$,
                  $$VALUES (true, '00000', 'password changed')$$,
                  'a committed right guess and a good new one: changed (the address in any case)');
RESET ROLE;
SELECT ok(verify_password('foo@example.com', 'a fine new passphrase'), 'the new password is stored');
SELECT is((SELECT count(*) FROM password_attempts WHERE email = 'foo@example.com'), 0::bigint,
          'the change cleared the mailbox''s attempts');

-- 3. the guessing bound: five failures in the window, then no check at all
SET ROLE mailwebmail;
SELECT check_current_password('foo@example.com', 'guess ' || n) FROM generate_series(1, 5) AS n;
SELECT results_eq($$SELECT ticket IS NULL, code FROM check_current_password('foo@example.com', 'a fine new passphrase')$$,
                  $$VALUES (true, 'MB004')$$, 'the sixth check is refused by the limit, right password or not');
SELECT check_current_password('ghost@example.com', 'guess ' || n) FROM generate_series(1, 5) AS n;
SELECT results_eq($$SELECT ticket IS NULL, code FROM check_current_password('ghost@example.com', 'x')$$,
                  $$VALUES (true, 'MB004')$$, 'a missing mailbox locks out the same way (nothing tells it apart)');
RESET ROLE;
SELECT results_eq($$SELECT split_part(reason, ':', 1) FROM audit_log WHERE operation = 'REFUSED'
                     AND row_key = 'foo@example.com' ORDER BY id DESC LIMIT 6$$,
                  $$VALUES ('MB004'), ('28P01'), ('28P01'), ('28P01'), ('28P01'), ('28P01')$$,
                  'the audit log shows the five failures and the refusal');
SELECT is((SELECT array_agg(DISTINCT login_role || '/' || acting_role) FROM audit_log WHERE operation = 'REFUSED'),
          ARRAY['postgres/mailwebmail'], 'each refusal names the login and the role it acted as');
SELECT is((SELECT count(*) FROM audit_log WHERE reason ~* 'passphrase|guess'), 0::bigint,
          'no password in any audit row');
SELECT is((SELECT max(octet_length(row_key)) <= 254 FROM audit_log WHERE operation = 'REFUSED'), true,
          'no refusal stores more than an address');

-- 4. the settings are mailowner's
SET ROLE alice;
SELECT throws_ok($$UPDATE settings SET password_max_failures = 1000$$, '42501', NULL,
                 'a help-desk account cannot loosen the guessing bound');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

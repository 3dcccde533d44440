-- The audit log: every change to the mail tables, through the API or by direct DML,
-- recorded with who and which columns, never a value.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(17);
\ir _setup.sql

SELECT trigger_is('public', t, g, 'public', f, format('%s: %s logs through %s', t, g, f))
  FROM (VALUES ('transports', 'audit_insert', 'audit_statement'), ('transports', 'audit_delete', 'audit_statement'),
               ('transports', 'audit_update', 'audit_update'), ('users', 'audit_insert', 'audit_statement'),
               ('users', 'audit_delete', 'audit_statement'), ('users', 'audit_update', 'audit_update'),
               ('aliases', 'audit_insert', 'audit_statement'), ('aliases', 'audit_update', 'audit_update'))
       AS v(t, g, f);

CREATE TEMP TABLE mark AS SELECT coalesce(max(id), 0) AS id FROM audit_log;
GRANT SELECT ON mark TO PUBLIC;
CREATE TEMP VIEW logged AS
SELECT login_role, acting_role, table_name, operation, row_key, changed
  FROM audit_log WHERE id > (SELECT id FROM mark) ORDER BY id;
GRANT SELECT ON logged TO PUBLIC;

SET ROLE alice;  -- a DBA account, member of mailadmin (pg_prove's login is the superuser)
SELECT add_domain('example.com');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT add_alias('info@example.com', 'foo@example.com');
SELECT set_password('foo@example.com', 'secret two');
SELECT set_mailbox_active('foo@example.com', true);  -- already active: nothing changes
SELECT set_mailbox_active('foo@example.com', false);
SELECT remove_alias('info@example.com', 'foo@example.com');
SELECT results_eq('SELECT * FROM logged',
    $$VALUES (current_setting('session_authorization'), 'alice', 'transports', 'INSERT', 'example.com', NULL::text[]),
             (current_setting('session_authorization'), 'alice', 'users', 'INSERT', 'foo@example.com', NULL),
             (current_setting('session_authorization'), 'alice', 'aliases', 'INSERT', 'info@example.com -> foo@example.com', NULL),
             (current_setting('session_authorization'), 'alice', 'users', 'UPDATE', 'foo@example.com', ARRAY['password']),
             (current_setting('session_authorization'), 'alice', 'users', 'UPDATE', 'foo@example.com', ARRAY['active']),
             (current_setting('session_authorization'), 'alice', 'aliases', 'DELETE', 'info@example.com -> foo@example.com', NULL)$$,
    'each API call is logged once per changed row, with the caller and the changed columns; a no-op is not');
SET ROLE mailadmin;
SELECT set_mailbox_active('foo@example.com', true);
SELECT is((SELECT acting_role FROM audit_log ORDER BY id DESC LIMIT 1), 'mailadmin',
          'after SET ROLE the acting role is logged beside the login');
SELECT is((SELECT login_role FROM audit_log ORDER BY id DESC LIMIT 1), session_user::text,
          'the login is the session user');

-- never a value: neither the passwords nor their hashes appear anywhere in the log
RESET ROLE;
SELECT ok(NOT EXISTS (SELECT FROM audit_log l, users u
                       WHERE strpos(l::text, 'secret') > 0 OR strpos(l::text, u.password) > 0),
          'no password and no hash in any log row');

-- direct DML as the owner (a DBA fixing data by hand) is logged as well
SET ROLE mailowner;
UPDATE users SET realname = 'Foo Lastname' WHERE email = 'foo@example.com';
DELETE FROM users WHERE email = 'foo@example.com';
SELECT results_eq($$SELECT acting_role, operation, row_key, changed FROM logged WHERE acting_role = 'mailowner'$$,
    $$VALUES ('mailowner', 'UPDATE', 'foo@example.com', ARRAY['realname']),
             ('mailowner', 'DELETE', 'foo@example.com', NULL::text[])$$,
    'direct UPDATE and DELETE by the owner are logged');
TRUNCATE aliases;
SELECT is((SELECT operation || ' ' || table_name FROM audit_log ORDER BY id DESC LIMIT 1), 'TRUNCATE aliases',
          'TRUNCATE is logged');
RESET ROLE;

-- the log is read-only for everyone but its owner
SELECT throws_ok($$SET ROLE mailadmin; DELETE FROM audit_log$$, '42501', NULL, 'mailadmin cannot delete log rows');
RESET ROLE;
SELECT throws_ok($$SET ROLE mailadmin; INSERT INTO audit_log (login_role, acting_role, txid, table_name, operation) VALUES ('x', 'x', '1', 'users', 'INSERT')$$,
                 '42501', NULL, 'mailadmin cannot forge log rows');
RESET ROLE;
SELECT throws_ok($$SET ROLE mailreader; SELECT count(*) FROM audit_log$$, '42501', NULL, 'Postfix''s role cannot read the log');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

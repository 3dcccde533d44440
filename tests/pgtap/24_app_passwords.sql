-- App passwords and forwards (issue 33 items 1 and 7, migration 0212,
-- sql/api/42_app_passwords.sql and 52_forwards.sql): generated passwords stored hashed and
-- never readable again, listed without hashes, revoked; only Dovecot's role reads hashes;
-- a site setting turns the main password off per service; a customer's admin manages its
-- own domains only. Through real Dovecot logins: tests/test_app_passwords.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(44);
\ir _setup.sql

CREATE TEMP TABLE t_pw (name text, pw text);
GRANT ALL ON t_pw TO PUBLIC;

-- 1. who reads what
SELECT table_owner_is('public', 'app_passwords', 'mailowner', 'app_passwords belongs to mailowner');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailadmin', 'maildomainadmin', 'mailreader', 'mailquota', 'mailwebmail',
                                           'maildkim', 'public']) r
                 WHERE has_column_privilege(r, 'public.app_passwords', 'hash', 'SELECT')
                    OR has_column_privilege(r, 'public.app_passwords', 'token', 'SELECT')),
          '{}'::text[], 'only mailauth (Dovecot) reads hashes and tokens');
SELECT ok(has_column_privilege('mailauth', 'public.app_passwords', 'hash', 'SELECT')
          AND NOT has_column_privilege('mailauth', 'public.app_passwords', 'name', 'SELECT'),
          'mailauth reads the columns of its lookup only');
SELECT is(array(SELECT r || ' ' || p FROM unnest(ARRAY['mailadmin', 'maildomainadmin', 'mailreader', 'mailauth',
                                                       'mailquota', 'mailwebmail', 'public']) r,
                                          unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
                 WHERE has_table_privilege(r, 'public.app_passwords', p)),
          '{}'::text[], 'nobody but mailowner writes app_passwords');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailreader', 'mailauth', 'mailquota', 'mailwebmail']) r
                 WHERE has_function_privilege(r, 'public.add_app_password(text, text, text[])', 'EXECUTE')
                    OR has_function_privilege(r, 'public.set_forward(text, text, boolean)', 'EXECUTE')),
          '{}'::text[], 'no service role adds app passwords or forwards');
SELECT ok(has_function_privilege('mailauth', 'public.main_password_allowed(text)', 'EXECUTE'),
          'Dovecot''s role may ask main_password_allowed()');
SELECT is((SELECT attstattarget FROM pg_attribute WHERE attrelid = 'public.app_passwords'::regclass AND attname = 'hash')::integer,
          0, 'ANALYZE copies no hash into pg_statistic');

-- 2. add, as mailadmin
SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_mailbox('foo@example.com', 'main pw main pw');
SELECT add_mailbox('boss@example.org', 'main pw boss pw');
INSERT INTO t_pw SELECT 'phone', add_app_password('Foo@Example.COM', 'phone', ARRAY['IMAP', 'submission', 'imap']);
SELECT matches((SELECT pw FROM t_pw), '^[a-km-z2-9]{32}$', 'the password: 32 unambiguous letters and digits');
SELECT results_eq($$SELECT email, name, services, last_used FROM app_passwords_list('foo@example.com')$$,
                  $$VALUES ('foo@example.com', 'phone', ARRAY['imap', 'submission'], NULL::timestamptz)$$,
                  'listed lower-cased, services sorted once, never used');
SELECT throws_ok($$SELECT hash FROM app_passwords$$, '42501', NULL, 'mailadmin reads no hash');
SELECT throws_ok($$SELECT add_app_password('foo@example.com', 'phone', ARRAY['imap'])$$, '23505',
                 'mailbox "foo@example.com" has an app password named "phone" already', 'a name once per mailbox');
SELECT throws_ok($$SELECT add_app_password('nobody@example.com', 'x', ARRAY['imap'])$$, 'P0002', NULL,
                 'an unknown mailbox is refused');
SELECT throws_ok($$SELECT add_app_password('foo@example.com', 'x', ARRAY['imap', 'lmtp'])$$, '22023',
                 'unknown service "lmtp"; the services are imap, pop3, smtp, submission and sieve', 'an unknown service');
SELECT throws_ok($$SELECT add_app_password('foo@example.com', 'x', '{}')$$, '22023', NULL, 'no service at all');
SELECT throws_ok($$SELECT add_app_password('foo@example.com', 'x', NULL)$$, '22004', NULL, 'NULL services');
SELECT throws_ok($$SELECT add_app_password('foo@example.com', E'bad\nname', ARRAY['imap'])$$, '22023', NULL,
                 'a name with a line break');
SELECT throws_ok($$SELECT add_app_password('foo@example.com', NULL, ARRAY['imap'])$$, '22004', NULL, 'a NULL name');
INSERT INTO t_pw SELECT 'laptop', add_app_password('foo@example.com', 'laptop', ARRAY['imap', 'smtp']);
RESET ROLE;
SELECT ok((SELECT bool_and(public.password_matches(a.hash, t.pw)) FROM app_passwords a JOIN t_pw t USING (name)),
          'each hash is bcrypt of the whole password');
SELECT ok((SELECT bool_and(a.token = left(t.pw, 8)) FROM app_passwords a JOIN t_pw t USING (name)),
          'the token is the password''s first 8 characters');
SELECT ok((SELECT count(DISTINCT pw) FROM t_pw) = 2, 'two calls, two passwords');
SELECT is(array(SELECT operation || ' ' || row_key FROM audit_log WHERE table_name = 'app_passwords' ORDER BY id),
          ARRAY['INSERT foo@example.com -> phone', 'INSERT foo@example.com -> laptop'], 'each is audited by key, no hash');

-- 3. what Dovecot's second passdb reads, as mailauth
SET ROLE mailauth;
SELECT is((SELECT a.services FROM app_passwords a WHERE a.email = 'foo@example.com'
             AND a.token = (SELECT left(pw, 8) FROM t_pw WHERE name = 'phone')),
          ARRAY['imap', 'submission'], 'mailauth finds one row by address and token');
SELECT ok(main_password_allowed('imap') AND main_password_allowed('doveadm') AND main_password_allowed(NULL),
          'the main password is allowed everywhere by default');
RESET ROLE;
UPDATE settings SET app_password_services = '{imap,pop3,smtp,submission}';
SET ROLE mailauth;
SELECT ok(NOT main_password_allowed('imap') AND NOT main_password_allowed('smtp') AND main_password_allowed('sieve'),
          'with the site setting, the main password is refused for the listed services only');
RESET ROLE;
SELECT throws_ok($$UPDATE settings SET app_password_services = '{imap,webmail}'$$, '23514', NULL,
                 'the setting names known services only');
UPDATE settings SET app_password_services = '{}';
SET ROLE mailadmin;
SELECT throws_ok($$UPDATE settings SET app_password_services = '{imap}'$$, '42501', NULL,
                 'mailadmin cannot change the setting');

-- 4. revoke
SELECT lives_ok($$SELECT revoke_app_password('FOO@example.com', 'laptop')$$, 'mailadmin revokes one');
SELECT is(array(SELECT name FROM app_passwords_list('foo@example.com')), ARRAY['phone'], 'the other stays');
SELECT throws_ok($$SELECT revoke_app_password('foo@example.com', 'laptop')$$, 'P0002',
                 'mailbox "foo@example.com" has no app password named "laptop"', 'revoking again is refused');
RESET ROLE;
SELECT ok(EXISTS (SELECT FROM auth_cache_changes WHERE email = 'foo@example.com'),
          'the change is recorded for `dovecot follow` (cached logins flushed)');

-- 5. a customer's admin
CREATE ROLE t_alice NOLOGIN;
GRANT maildomainadmin TO t_alice;
SELECT grant_domain_admin('t_alice', 'example.com');
SET SESSION AUTHORIZATION t_alice;
SELECT lives_ok($$SELECT add_app_password('foo@example.com', 'tablet', ARRAY['pop3'])$$, 'alice adds one in her domain');
SELECT throws_ok($$SELECT add_app_password('boss@example.org', 'x', ARRAY['imap'])$$, '42501', NULL,
                 'but not in another customer''s');
SELECT throws_ok($$SELECT revoke_app_password('boss@example.org', 'x')$$, '42501', NULL, 'nor revokes there');
SELECT throws_ok($$SELECT * FROM app_passwords_list('boss@example.org')$$, '42501', NULL, 'nor lists there');
SELECT throws_ok($$SELECT set_forward('boss@example.org', 'x@elsewhere.example')$$, '42501', NULL,
                 'nor forwards another customer''s mailbox');
RESET SESSION AUTHORIZATION;
SET ROLE mailadmin;
SELECT add_app_password('boss@example.org', 'desk', ARRAY['imap']);
RESET ROLE;
SET SESSION AUTHORIZATION t_alice;
SELECT is(array(SELECT email || ' ' || name FROM app_passwords_list()),
          ARRAY['foo@example.com phone', 'foo@example.com tablet'], 'her list shows her domains only');
RESET SESSION AUTHORIZATION;

-- 6. forwards over the alias rows
SET ROLE mailadmin;
SELECT results_eq($$SELECT alias, email FROM set_forward('Foo@example.com', 'Bar@Elsewhere.example', true)$$,
                  $$VALUES ('foo@example.com', 'bar@elsewhere.example'), ('foo@example.com', 'foo@example.com')$$,
                  'keep-copy: an alias to the destination and to itself');
SELECT results_eq($$SELECT * FROM forward_of('foo@example.com')$$,
                  $$VALUES ('foo@example.com', ARRAY['bar@elsewhere.example'], true)$$, 'forward_of() says so');
SELECT results_eq($$SELECT alias, email FROM set_forward('foo@example.com', 'other@elsewhere.example')$$,
                  $$VALUES ('foo@example.com', 'other@elsewhere.example')$$, 'set again replaces it, without a copy');
SELECT throws_ok($$SELECT set_forward('foo@example.com', 'foo@example.com')$$, '22023', NULL, 'not to itself');
SELECT throws_ok($$SELECT set_forward('list@example.com', 'x@elsewhere.example', true)$$, '22023', NULL,
                 'no copy for an address that is no mailbox');
SELECT is(clear_forward('foo@example.com'), 1, 'clear removes its rows');
SELECT is((SELECT count(*) FROM forward_of('foo@example.com'))::integer, 0, 'and it forwards nowhere');
SELECT throws_ok($$SELECT clear_forward('foo@example.com')$$, 'P0002', NULL, 'clearing again is refused');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

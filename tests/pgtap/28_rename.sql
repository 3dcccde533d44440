-- Renaming a mailbox (issue 33 item 5, migration 0216, sql/api/41_rename.sql): everything
-- follows the new address, the maildir stays, the old address is resolved for Dovecot's
-- LMTP for 5 days and kept from reuse; refusals name the value, with their SQLSTATE, and
-- change nothing; a scoped admin needs both domains. Through the real Postfix and Dovecot
-- under SMTP load, and the CLI: tests/test_rename.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(53);
\ir _setup.sql

-- 1. the table, who reads it, its triggers
SELECT table_owner_is('public', 'former_addresses', 'mailowner', 'former_addresses belongs to mailowner');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim']) r
                 WHERE has_table_privilege(r, 'public.former_addresses', 'SELECT')),
          ARRAY['mailadmin'], 'mailadmin reads former_addresses (no secret in it)');
SELECT ok(has_column_privilege('mailauth', 'public.former_addresses', 'address', 'SELECT')
          AND has_column_privilege('mailauth', 'public.former_addresses', 'email', 'SELECT')
          AND has_column_privilege('mailauth', 'public.former_addresses', 'until', 'SELECT')
          AND NOT has_column_privilege('mailauth', 'public.former_addresses', 'renamed_by', 'SELECT'),
          'mailauth (Dovecot''s user_query) reads the address, the mailbox and the window only');
SELECT triggers_are('public', 'former_addresses', ARRAY['audit_insert', 'audit_delete', 'audit_update', 'audit_truncate'],
                    'former_addresses is audited like every mail table');
SELECT has_trigger('public', t, n, format('%s has %s', t, n))
  FROM (VALUES ('users', 'users_former_apart'), ('users', 'users_former_apart_on_update'),
               ('aliases', 'aliases_former_apart'), ('aliases', 'aliases_former_apart_on_update')) AS x(t, n);

-- 2. a mailbox with everything, renamed into another domain
SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT * FROM add_mailbox('foo@example.com', 'secret one', 'Foo Person', NULL, 5000000);
SELECT add_mailbox('bar@example.com', 'secret two');
SELECT set_mailbox_service('foo@example.com', 'pop3', false);
SELECT set_login_networks('foo@example.com', ARRAY['192.0.2.0/24']);
SELECT add_alias('info@example.com', 'foo@example.com');
SELECT add_alias('fwd@example.org', 'foo@example.com');
SELECT set_forward('foo@example.com', 'far@elsewhere.test', true);  -- keep a copy: foo -> foo too
SELECT allow_send_as('foo@example.com', 'boss@example.org');
SELECT allow_send_as('bar@example.com', 'foo@example.com');
SELECT set_vacation('foo@example.com', 'Away', 'Back soon');
SELECT add_app_password('foo@example.com', 'phone', ARRAY['imap']) IS NOT NULL;
RESET ROLE;
INSERT INTO quota_usage (email, bytes, messages) VALUES ('foo@example.com', 1234, 5);
INSERT INTO last_logins (email, service, login_epoch, last_login) VALUES ('foo@example.com', 'imap', 1796000000, now());
INSERT INTO password_attempts (email, matched) VALUES ('foo@example.com', false);
CREATE TEMP TABLE before AS
SELECT (SELECT to_jsonb(u) - 'modified' - 'email' - 'domain' FROM users u WHERE email = 'foo@example.com') AS box,
       (SELECT hash FROM app_passwords WHERE email = 'foo@example.com') AS app_hash;
GRANT SELECT ON before TO PUBLIC;
DELETE FROM map_changes;
DELETE FROM auth_cache_changes;
SET ROLE alice;
SELECT results_eq($$SELECT email, maildir COLLATE "default", realname FROM rename_mailbox('Foo@Example.COM', 'Fred@Example.ORG')$$,
                  $$VALUES ('fred@example.org', 'example.com/foo/', 'Foo Person')$$,
                  'rename_mailbox() answers the mailbox under its new (lower-cased) address, its maildir kept');
RESET ROLE;
SELECT is((SELECT to_jsonb(u) - 'modified' - 'email' - 'domain' FROM users u WHERE email = 'fred@example.org'), (SELECT box FROM before),
          'the users row is as it was but its address: hash and its date, maildir, quota, services, networks');
SELECT is_empty($$SELECT * FROM users WHERE email = 'foo@example.com'$$, 'no mailbox has the old address');
SELECT is((SELECT hash FROM app_passwords WHERE email = 'fred@example.org'), (SELECT app_hash FROM before), 'its app password follows');
SELECT is((SELECT subject FROM vacations WHERE email = 'fred@example.org'), 'Away', 'its vacation follows');
SELECT results_eq($$SELECT bytes, messages FROM quota_usage WHERE email = 'fred@example.org'$$,
                  $$VALUES (1234::bigint, 5::bigint)$$, 'Dovecot''s usage counts follow');
SELECT is((SELECT service FROM last_logins WHERE email = 'fred@example.org'), 'imap', 'its last logins follow');
SELECT is((SELECT count(*)::int FROM password_attempts WHERE email = 'fred@example.org'), 1, 'its count of wrong guesses follows');
SELECT bag_eq($$SELECT alias, email FROM aliases$$,
              $$VALUES ('info@example.com', 'fred@example.org'), ('fwd@example.org', 'fred@example.org'),
                       ('fred@example.org', 'far@elsewhere.test'), ('fred@example.org', 'fred@example.org')$$,
              'aliases to it point to the new address, in every domain; its forward (and kept copy) moved with it');
SELECT bag_eq($$SELECT login, address FROM send_as$$,
              $$VALUES ('fred@example.org', 'boss@example.org'), ('bar@example.com', 'fred@example.org')$$,
              'its send-as grants follow, and so do the grants others hold to send as it');
SELECT results_eq($$SELECT address, email, until::date FROM former_addresses$$,
                  $$VALUES ('foo@example.com', 'fred@example.org', (now() + interval '5 days')::date)$$,
                  'the old address is kept as a former address of the mailbox for 5 days');
SELECT ok((SELECT array_agg(address) FROM map_changes) @> ARRAY['foo@example.com', 'fred@example.org', 'info@example.com', 'fwd@example.org'],
          'both addresses and the aliases to it are recorded for `maps follow`');
SELECT ok((SELECT array_agg(email) FROM auth_cache_changes) @> ARRAY['foo@example.com', 'fred@example.org'],
          'both addresses are recorded for `dovecot follow` (auth cache flush)');
SELECT is((SELECT row_key || ' ' || array_to_string(changed, ',') FROM audit_log WHERE table_name = 'users' AND operation = 'UPDATE'
            ORDER BY id DESC LIMIT 1),
          'foo@example.com => fred@example.org domain,email', 'the rename is audited as old => new');

-- 3. what Dovecot and Postfix answer now
SET ROLE mailauth;
SELECT results_eq($$SELECT u.email, u.maildir COLLATE "default" FROM users u
                     WHERE u.email = coalesce((SELECT f.email FROM former_addresses f WHERE f.address = 'foo@example.com' AND f.until > now()),
                                              'foo@example.com')$$,
                  $$VALUES ('fred@example.org', 'example.com/foo/')$$,
                  'user_query''s lookup resolves the old address to the mailbox (LMTP delivers queued mail)');
RESET ROLE;
SET ROLE alice;
SELECT is_empty($$SELECT * FROM postfix_mailbox('foo', 'example.com')$$, 'Postfix refuses new mail to the old address');
SELECT isnt_empty($$SELECT * FROM postfix_mailbox('fred', 'example.org')$$, 'and takes it for the new one');

-- 4. the old address is not reusable in its window, but by the mailbox itself
SELECT throws_like($$SELECT add_mailbox('foo@example.com', 'another one', NULL, 'example.com/foo2/')$$,
                   '"foo@example.com" was the address of mailbox "fred@example.org", renamed: mail queued for it is delivered there until 2%',
                   'a new mailbox with the old address is refused, naming both and the date');
SELECT throws_ok($$SELECT add_mailbox('foo@example.com', 'another one', NULL, 'example.com/foo2/')$$, '23505', NULL, 'with 23505');
SELECT throws_ok($$SELECT add_alias('foo@example.com', 'bar@example.com')$$, '23505', NULL, 'so is an alias of it elsewhere');
SELECT throws_ok($$SELECT rename_mailbox('bar@example.com', 'foo@example.com')$$, '23505',
                 '"foo@example.com" was the address of mailbox "fred@example.org", renamed: mail queued for it is delivered there until '
                 || to_char((SELECT until FROM former_addresses) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
                 'and renaming another mailbox to it');
SELECT lives_ok($$SELECT add_alias('foo@example.com', 'fred@example.org')$$, 'an alias to the renamed mailbox itself is allowed');
SELECT lives_ok($$SELECT remove_alias('foo@example.com')$$, '(removed again)');

-- 5. refusals change nothing
SELECT add_alias('sales@example.com', 'bar@example.com');
RESET ROLE;
CREATE TEMP TABLE snapshot AS
SELECT (SELECT jsonb_agg(to_jsonb(u) ORDER BY email) FROM users u) AS u,
       (SELECT jsonb_agg(to_jsonb(a) ORDER BY alias, email) FROM aliases a) AS a,
       (SELECT jsonb_agg(to_jsonb(f) ORDER BY address) FROM former_addresses f) AS f;
GRANT SELECT ON snapshot TO PUBLIC;
SET ROLE alice;
SELECT throws_ok($$SELECT rename_mailbox('nobody@example.com', 'x@example.com')$$, 'P0002',
                 'mailbox "nobody@example.com" does not exist', 'an unknown mailbox: P0002, named');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'bar@example.com')$$, '23505',
                 'mailbox "bar@example.com" already exists', 'onto a mailbox: 23505, named');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'sales@example.com')$$, '23505',
                 '"sales@example.com" is already an alias (to "bar@example.com")', 'onto an alias: 23505, named');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'x@nothere.test')$$, '23503',
                 'domain "nothere.test" is not hosted here', 'into a domain not hosted: 23503, named');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'not an address')$$, '22023', NULL, 'an invalid address: 22023');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'FRED@example.org')$$, '22023',
                 'mailbox "fred@example.org" already has that address', 'the same address: 22023');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', NULL)$$, '22004', NULL, 'NULL: 22004');
SELECT add_alias_domain('example.net', 'example.com');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'x@example.net')$$, '23503', NULL, 'into an alias domain: 23503');
SELECT add_domain('relay.test', 'smtp:[mx.relay.test]');
SELECT throws_ok($$SELECT rename_mailbox('fred@example.org', 'x@relay.test')$$, '23514',
                 'domain "relay.test" is relayed to "smtp:[mx.relay.test]", so it holds no mailboxes ("x@relay.test")',
                 'into a relay domain: 23514, named');
SELECT add_mailbox('gone@example.com', 'pw pw pw gone');
SELECT remove_mailbox('gone@example.com', 30);
SELECT throws_like($$SELECT rename_mailbox('fred@example.org', 'gone@example.com')$$,
                   '"gone@example.com" belongs to a mailbox removed with a grace period%',
                   'onto a mailbox removed with a grace period: refused, named');
RESET ROLE;
SELECT ok((SELECT u FROM snapshot) = (SELECT jsonb_agg(to_jsonb(u) ORDER BY email) FROM users u WHERE email <> 'gone@example.com')
          AND (SELECT a FROM snapshot) = (SELECT jsonb_agg(to_jsonb(a) ORDER BY alias, email) FROM aliases a)
          AND (SELECT f FROM snapshot) = (SELECT jsonb_agg(to_jsonb(f) ORDER BY address) FROM former_addresses f),
          'the refused renames changed nothing');

-- 6. keep_old_as_alias, a second rename, and back
SET ROLE alice;
SELECT lives_ok($$SELECT rename_mailbox('bar@example.com', 'barry@example.com', true)$$, 'keep_old_as_alias keeps the old address');
RESET ROLE;
SELECT bag_eq($$SELECT alias, email FROM aliases WHERE email = 'barry@example.com'$$,
              $$VALUES ('bar@example.com', 'barry@example.com'), ('sales@example.com', 'barry@example.com')$$,
              'as an alias of the new one (Postfix accepts it); the alias to it follows');
SET ROLE alice;
SELECT lives_ok($$SELECT rename_mailbox('fred@example.org', 'fritz@example.org')$$, 'a mailbox renamed twice');
RESET ROLE;
SELECT bag_eq($$SELECT address, email FROM former_addresses$$,
              $$VALUES ('foo@example.com', 'fritz@example.org'), ('fred@example.org', 'fritz@example.org'),
                       ('bar@example.com', 'barry@example.com')$$,
              'keeps both former addresses, pointing at its current one');
SET ROLE alice;
SELECT lives_ok($$SELECT rename_mailbox('barry@example.com', 'bar@example.com')$$,
                'a mailbox may take back its old address, kept as its alias');
RESET ROLE;
SELECT is_empty($$SELECT * FROM aliases WHERE alias = 'bar@example.com'$$, 'the alias went');
SELECT bag_eq($$SELECT address, email FROM former_addresses WHERE email LIKE 'bar%'$$,
              $$VALUES ('barry@example.com', 'bar@example.com')$$, 'and its former address is the other one now');

-- 7. a customer's admin: both domains must be its own; limits count on the new domain
RESET ROLE;
CREATE ROLE t_alice NOLOGIN;
GRANT maildomainadmin TO t_alice;
SET ROLE mailadmin;
SELECT grant_domain_admin('t_alice', 'example.com');
SELECT add_domain('example.info');
SELECT set_domain_limits('example.info', 0, NULL, NULL);
RESET ROLE;
SET SESSION AUTHORIZATION t_alice;
SELECT throws_ok($$SELECT rename_mailbox('bar@example.com', 'bar@example.org')$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'a scoped admin may not rename into another customer''s domain');
SELECT throws_ok($$SELECT rename_mailbox('fritz@example.org', 'fritz@example.com')$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'nor out of one');
SELECT lives_ok($$SELECT rename_mailbox('bar@example.com', 'robert@example.com')$$, 'but renames within its own');
RESET SESSION AUTHORIZATION;
SET ROLE alice;
SELECT throws_ok($$SELECT rename_mailbox('robert@example.com', 'robert@example.info')$$, '23514',
                 'domain "example.info" allows at most 0 mailbox(es)', 'the new domain''s limit counts the mailbox');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

-- Bad input: a precise SQLSTATE, a message naming the value, and nothing written.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(26);
\ir _setup.sql

SET ROLE alice;
SELECT add_domain('example.com');
SELECT add_mailbox('foo@example.com', 'secret');

SELECT throws_ok($$SELECT add_mailbox('bar@example.org', 'x')$$, '23503',
                 'domain "example.org" is not hosted here', 'mailbox in an unhosted domain');
SELECT throws_ok($$SELECT add_alias('bar@exmaple.com', 'foo@example.com')$$, '23503',
                 'domain "exmaple.com" is not hosted here', 'the tutorial''s alias in the typo domain');
SELECT throws_ok($$SELECT add_mailbox('FOO@example.com', 'x')$$, '23505',
                 'mailbox "foo@example.com" already exists', 'duplicate mailbox, any case');
SELECT throws_ok($$SELECT add_domain('EXAMPLE.COM')$$, '23505',
                 'domain "example.com" is already hosted here', 'duplicate domain, any case');
SELECT throws_ok($$SELECT add_mailbox('not-an-address', 'x')$$, '22023',
                 '"not-an-address" is not an email address: expected local-part@domain', 'not an address');
SELECT throws_ok($$SELECT add_mailbox('a@example.com', '')$$, '22023', 'password must not be empty', 'empty password');
SELECT throws_ok($$SELECT add_mailbox('a@example.com', NULL)$$, '22004', 'password must not be NULL', 'NULL password');
SELECT throws_ok($$SELECT add_mailbox('a@example.com', 'x', NULL, '../../etc/')$$, '22023',
                 'maildir "../../etc/" must not contain ".", ".." or empty path segments', 'maildir escaping the base');
SELECT throws_ok($$SELECT add_mailbox('a@example.com', 'x', NULL, '/etc/')$$, '22023',
                 'maildir "/etc/" must be relative to virtual_mailbox_base (no leading "/")', 'absolute maildir');
SELECT throws_ok($$SELECT add_mailbox_hashed('a@example.com', 'hunter2')$$, '22023', NULL, 'a plaintext is not a hash');
SELECT throws_ok($$SELECT add_alias('bar@example.com', 'ghost@example.com')$$, '23503', NULL,
                 'alias to a local address that does not exist');
SELECT throws_ok($$SELECT remove_domain('example.com')$$, '23503',
                 'domain "example.com" still has 1 mailbox(es), 0 alias row(s) and 0 alias domain(s)', 'remove_domain without cascade');
SELECT throws_ok($$SELECT remove_mailbox('ghost@example.com')$$, 'P0002',
                 'mailbox "ghost@example.com" does not exist', 'removing a missing mailbox');
SELECT throws_ok($$SELECT add_domain('bad domain')$$, '22023', NULL, 'invalid domain name');
SELECT throws_ok($$INSERT INTO users (email, password, maildir) VALUES ('x@example.com', 'pw', 'x/')$$, '42501',
                 'permission denied for table users', 'mailadmin cannot write a table directly');
SELECT throws_ok($$UPDATE settings SET bcrypt_cost = 4$$, '42501', NULL, 'mailadmin cannot lower the bcrypt cost');
SELECT throws_ok($$SELECT password FROM users$$, '42501', NULL, 'mailadmin cannot read hashes');

RESET ROLE;
-- the hosted-domain rule holds for direct DML by the owner too (0013's triggers)
SELECT throws_ok($$INSERT INTO users (email, password, maildir) SELECT 'x' || g || '@example.com',
                    (SELECT password FROM users), 'x' || g || '/' FROM generate_series(1, 3) g
                  UNION ALL SELECT 'y@example.net', (SELECT password FROM users), 'y/'$$, '23503',
                 'domain "example.net" is not hosted here (users_domain_hosted)',
                 'one unhosted row refuses the whole multi-row INSERT');
SELECT throws_ok($$UPDATE users SET email = 'foo@example.net'$$, '23503',
                 'domain "example.net" is not hosted here (users_domain_hosted_on_update)',
                 'moving a mailbox to an unhosted domain');
SELECT throws_ok($$INSERT INTO aliases (alias, email) VALUES ('bar@exmaple.com', 'foo@example.com')$$, '23503',
                 'domain "exmaple.com" is not hosted here (aliases_domain_hosted)', 'direct alias in the typo domain');
SELECT throws_ok($$DELETE FROM transports$$, '23503',
                 'domain "example.com" still has mailboxes or aliases', 'deleting a domain in use');
SELECT throws_ok($$UPDATE transports SET domain = 'example.org'$$, '23503',
                 'domain "example.com" still has mailboxes or aliases', 'renaming a domain in use');
SELECT throws_ok($$TRUNCATE transports$$, '0A000', NULL, 'truncating transports alone (admin_scopes refers to it, 0207)');
SELECT lives_ok($$UPDATE transports SET active = false, modified = now()$$,
                'an update that keeps the domain name is not refused');
SELECT is((SELECT count(*)::int FROM users), 1, 'only the one good mailbox was written');
SELECT is((SELECT count(*)::int FROM aliases), 0, 'no alias was written');

SELECT * FROM finish();
ROLLBACK;

-- Password expiry (issue 33 item 3, migration 0215, sql/api/44_password_expiry.sql): the
-- date a password was set, kept by a trigger on every path that sets one; a maximum age
-- per domain and per mailbox (the mailbox's wins, 0: never); what Dovecot's main passdb
-- gets from password_expiry_check() (nologin and reason, none for the webmail's networks,
-- no row for smtp); the listing of expiring passwords, scoped for a customer's admin;
-- audited and recorded for `dovecot follow`. Through real Dovecot logins:
-- tests/test_password_expiry.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(51);
\ir _setup.sql

-- 1. the columns and who reads them
SELECT col_type_is('public', 'users', 'password_changed', 'timestamp with time zone', 'users.password_changed is a timestamptz');
SELECT col_not_null('public', 'users', 'password_changed', 'every mailbox has a password date');
SELECT col_type_is('public', 'users', 'password_max_age', 'integer', 'users.password_max_age is days');
SELECT col_type_is('public', 'transports', 'password_max_age', 'integer', 'transports.password_max_age is days');
SELECT is((SELECT password_expiry_services FROM settings), ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve'],
          'by default it applies to every login service');
SELECT is((SELECT password_expiry_exempt_networks FROM settings), '{127.0.0.1/32,::1/128}'::cidr[],
          'by default logins from this host (a webmail beside Dovecot) are exempt');
SELECT ok(has_column_privilege('mailauth', 'public.users', 'password_changed', 'SELECT')
          AND has_column_privilege('mailauth', 'public.users', 'password_max_age', 'SELECT')
          AND has_column_privilege('mailauth', 'public.transports', 'password_max_age', 'SELECT'),
          'Dovecot''s role reads the date and both ages');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim', 'public']) r
                 WHERE has_function_privilege(r, 'public.set_password_max_age(text, integer)', 'EXECUTE')
                    OR has_function_privilege(r, 'public.clear_password_max_age(text)', 'EXECUTE')
                    OR has_function_privilege(r, 'public.passwords_expiring(integer)', 'EXECUTE')),
          '{}'::text[], 'no service role sets or lists password ages');

-- 2. every path that sets a password sets its date (within this transaction now() is fixed)
SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_alias_domain('example.net', 'example.com');
SELECT add_mailbox('foo@example.com', 'main pw foo pw');
SELECT add_mailbox('bar@example.com', 'main pw bar pw');
SELECT add_mailbox('boss@example.org', 'main pw boss pw');
RESET ROLE;
SELECT is((SELECT password_changed FROM users WHERE email = 'foo@example.com'), now(), 'add_mailbox sets it');
UPDATE users SET password_changed = now() - interval '400 days';
SELECT is((SELECT count(*)::int FROM audit_log WHERE 'password_changed' = ANY (changed) AND NOT 'password' = ANY (changed)), 3,
          'the owner''s backdating is audited too, naming the column');
SET ROLE mailadmin;
SELECT set_password('foo@example.com', 'another pw foo');
SELECT add_mailbox_hashed('hashed@example.com', '{BLF-CRYPT}$2y$10$' || repeat('a', 53));
SELECT set_mailbox_quota('bar@example.com', 1000000);
RESET ROLE;
SELECT is((SELECT password_changed FROM users WHERE email = 'foo@example.com'), now(), 'set_password sets it');
SELECT is((SELECT password_changed FROM users WHERE email = 'hashed@example.com'), now(), 'add_mailbox_hashed sets it');
SELECT is((SELECT password_changed FROM users WHERE email = 'bar@example.com'), now() - interval '400 days',
          'a change that is not the password''s keeps it');
INSERT INTO import_staging (kind, address, password) VALUES ('mailbox', 'imported@example.com', 'imported pw pw');
SET ROLE mailadmin;
SELECT is_empty($$SELECT * FROM import_batch()$$, 'an import');
RESET ROLE;
SELECT is((SELECT password_changed FROM users WHERE email = 'imported@example.com'), now(), 'the import sets it');
UPDATE users SET password_changed = now() - interval '400 days' WHERE email = 'imported@example.com';
UPDATE users SET password = public.hash_password('changed pw pw') WHERE email = 'imported@example.com';
SELECT is((SELECT password_changed FROM users WHERE email = 'imported@example.com'), now(),
          'any UPDATE of the password (change_password()''s, the owner''s) sets it');
SET ROLE mailadmin;
SELECT remove_mailbox('bar@example.com', 30);
SELECT restore_mailbox('bar@example.com');
RESET ROLE;
SELECT is((SELECT password_changed FROM users WHERE email = 'bar@example.com'), now() - interval '400 days',
          'a restored mailbox keeps its date: its password did not change');
SELECT throws_ok($$UPDATE users SET password_changed = NULL WHERE email = 'bar@example.com'$$, '23502', NULL,
                 'never NULL');

-- 3. set, show, clear
SET ROLE mailadmin;
SELECT is(set_password_max_age('Example.COM', 90), 90, 'a domain''s age');
SELECT is(set_password_max_age('foo@example.com', 365), 365, 'a mailbox''s age');
SELECT is(set_password_max_age('hashed@example.com', 0), 0, 'a mailbox that never expires, whatever its domain says');
SELECT throws_ok($$SELECT set_password_max_age('example.com', 0)$$, '22023',
                 'maximum password age 0 is not a number of days from 1 to 36500', 'a domain''s 0 (clear it instead)');
SELECT throws_ok($$SELECT set_password_max_age('foo@example.com', -1)$$, '22023',
                 'maximum password age -1 is not a number of days from 0 to 36500', 'a negative age, naming it');
SELECT throws_ok($$SELECT set_password_max_age('foo@example.com', 36501)$$, '22023', NULL, 'a century is the limit');
SELECT throws_ok($$SELECT set_password_max_age('foo@example.com', NULL)$$, '22004', NULL, 'NULL days');
SELECT throws_ok($$SELECT set_password_max_age('nobody@example.com', 30)$$, 'P0002',
                 'mailbox "nobody@example.com" does not exist', 'an unknown mailbox');
SELECT throws_ok($$SELECT set_password_max_age('nothere.test', 30)$$, 'P0002',
                 'domain "nothere.test" is not hosted here', 'a domain not hosted');
SELECT throws_ok($$SELECT set_password_max_age('example.net', 30)$$, '22023', NULL, 'an alias domain');
SELECT results_eq($$SELECT name, days, domain_days, effective, expires FROM password_max_age('foo@example.com')$$,
                  $$VALUES ('foo@example.com', 365, 90, 365, now() + interval '365 days')$$,
                  'show: its own, its domain''s, the one enforced, when it expires');
SELECT results_eq($$SELECT effective, expires FROM password_max_age('bar@example.com')$$,
                  $$VALUES (90, now() - interval '310 days')$$, 'show: without its own, its domain''s');
SELECT results_eq($$SELECT effective, expires FROM password_max_age('hashed@example.com')$$,
                  $$VALUES (NULL::integer, NULL::timestamptz)$$, 'show: 0, never');

-- 4. what Dovecot's main passdb gets, as mailauth
RESET ROLE;
CREATE FUNCTION pg_temp.check(address text, service text, rip text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('%s %s %s', e.login, coalesce(e.nologin, '-'), coalesce(e.reason, '-'))
      FROM public.users u JOIN public.transports t ON t.domain = u.domain
     CROSS JOIN LATERAL public.password_expiry_check(u.password_changed, u.password_max_age, t.password_max_age, service, rip) e
     WHERE u.email = address
$$;
GRANT EXECUTE ON FUNCTION pg_temp.check(text, text, text) TO PUBLIC;
SET ROLE mailauth;
SELECT is(pg_temp.check('foo@example.com', 'imap', '192.0.2.1'), 't - -', 'a fresh password: nothing');
SELECT is(pg_temp.check('bar@example.com', 'imap', '192.0.2.1'), 't Y Your password has expired: change it in webmail.',
          'an expired one: nologin and the reason (Dovecot refuses it once the password matched)');
SELECT is(pg_temp.check('bar@example.com', 'imap', ''), 't Y Your password has expired: change it in webmail.',
          'no client address (doveadm without rip): not exempt');
SELECT is(pg_temp.check('bar@example.com', 'imap', '127.0.0.1'), 't - -', 'from the webmail''s network: exempt');
SELECT is(pg_temp.check('bar@example.com', 'imap', '::ffff:127.0.0.1'), 't - -', 'an IPv4-mapped address counts as IPv4');
SELECT is(pg_temp.check('bar@example.com', 'imap', 'not an address'), 't Y Your password has expired: change it in webmail.',
          'an address it cannot read is not exempt, and no error');
SELECT is(pg_temp.check('bar@example.com', 'smtp', '192.0.2.1'), 'f - -',
          'smtp: no row (Postfix ignores nologin)');
SELECT is(pg_temp.check('bar@example.com', 'doveadm', '192.0.2.1'), 't - -', 'doveadm is not a chosen service');
SELECT is(pg_temp.check('hashed@example.com', 'imap', '192.0.2.1'), 't - -', 'a mailbox''s 0 beats its domain''s age');
SELECT is(pg_temp.check('boss@example.org', 'imap', '192.0.2.1'), 't - -', 'no age anywhere: never');
RESET ROLE;
UPDATE settings SET password_expiry_services = ARRAY['pop3'], password_expiry_reason = 'Expired: see https://webmail.example.com';
SET ROLE mailauth;
SELECT is(pg_temp.check('bar@example.com', 'imap', '192.0.2.1') || ' / ' || pg_temp.check('bar@example.com', 'pop3', '192.0.2.1'),
          't - - / t Y Expired: see https://webmail.example.com', 'the services and the reason are settings');
RESET ROLE;

-- 5. who is expiring; clear
SET ROLE mailadmin;
SELECT results_eq($$SELECT email, max_age, expired FROM passwords_expiring(14)$$,
                  $$VALUES ('bar@example.com', 90, true)$$, 'expiring within 14 days: the expired one');
SELECT results_eq($$SELECT email, expired FROM passwords_expiring(400)$$,
                  $$VALUES ('bar@example.com', true), ('imported@example.com', false), ('foo@example.com', false)$$,
                  'within 400: the soonest first (imported: its domain''s 90 days)');
SELECT throws_ok($$SELECT * FROM passwords_expiring(-1)$$, '22023', 'within_days -1 is not a number of days from 0 to 36500',
                 'a negative window');
SELECT is(clear_password_max_age('foo@example.com'), true, 'clear: it had an age');
SELECT is(clear_password_max_age('foo@example.com'), false, 'clear again: it had none');
RESET ROLE;

-- 6. audited; Dovecot's cache flushed by `dovecot follow`
SELECT is(array(SELECT table_name || ' ' || row_key FROM audit_log WHERE 'password_max_age' = ANY (changed) ORDER BY id),
          ARRAY['transports example.com', 'users foo@example.com', 'users hashed@example.com', 'users foo@example.com'],
          'each set and clear is audited, naming the column (a clear of nothing writes nothing)');
SELECT ok(EXISTS (SELECT FROM auth_cache_changes WHERE email = 'hashed@example.com')
          AND EXISTS (SELECT FROM auth_cache_changes WHERE domain = 'example.com' AND email IS NULL),
          'the mailbox''s and the domain''s cached logins are recorded for flushing');

-- 7. a customer's admin: its own domains only
CREATE ROLE t_expiry_alice LOGIN;
GRANT maildomainadmin TO t_expiry_alice;
SELECT grant_domain_admin('t_expiry_alice', 'example.org');
UPDATE transports SET password_max_age = 30 WHERE domain = 'example.org';
SET SESSION AUTHORIZATION t_expiry_alice;
SELECT results_eq($$SELECT email FROM passwords_expiring(400)$$, $$VALUES ('boss@example.org')$$,
                  'a customer''s admin lists its own domains'' mailboxes only');
SELECT throws_ok($$SELECT set_password_max_age('foo@example.com', 30)$$, '42501',
                 'admin "t_expiry_alice" may not manage domain "example.com"', 'and sets no other customer''s age');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;

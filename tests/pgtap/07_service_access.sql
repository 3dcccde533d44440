-- Per-service access: what Dovecot's password_query decides for each service (an
-- allow-list, dovecot_service_allowed()), the switches' refusals, and who may read the
-- lists.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(21);
\ir _setup.sql

SELECT has_column('public', 'users', 'disabled_services', 'users.disabled_services exists');
SELECT has_column('public', 'transports', 'disabled_services', 'transports.disabled_services exists');
SELECT col_default_is('public', 'users', 'disabled_services', '{}'::text[], 'a mailbox starts with every service');

-- the decision as Dovecot's password_query makes it (dovecot/dovecot-sql.conf.ext)
CREATE FUNCTION pg_temp.may_log_in(address text, service text) RETURNS boolean LANGUAGE sql AS
$$ SELECT EXISTS (SELECT FROM users u JOIN transports t ON t.domain = u.domain
                   WHERE u.email = address AND u.active AND t.active
                     AND dovecot_service_allowed(service, u.disabled_services || t.disabled_services)) $$;
-- the services a mailbox may log in to, of those Dovecot 2.3 asks the passdb for and
-- names it does not know
CREATE FUNCTION pg_temp.services(address text) RETURNS text[] LANGUAGE sql AS
$$ SELECT coalesce(array_agg(s ORDER BY s), '{}') FROM unnest(ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve',
       'doveadm', 'lmtp', 'imap-urlauth', 'x-unknown', 'IMAP', '']) s WHERE pg_temp.may_log_in(address, s) $$;

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT * FROM add_mailbox('bar@example.com', 'secret two');

SELECT is((SELECT disabled_services FROM set_mailbox_service('Foo@Example.com', 'POP3', false)), ARRAY['pop3'],
          'a service is turned off for one mailbox, names in any case');
SELECT is((SELECT disabled_services FROM set_mailbox_service('foo@example.com', 'pop3', false)), ARRAY['pop3'],
          'turning it off twice keeps one entry');
SELECT ok(NOT pg_temp.may_log_in('foo@example.com', 'pop3') AND pg_temp.may_log_in('foo@example.com', 'imap')
          AND pg_temp.may_log_in('bar@example.com', 'pop3'), 'only that mailbox, only that service');
SELECT is((SELECT disabled_services FROM set_domain_service('example.com', 'smtp', false)), ARRAY['smtp'],
          'a domain-wide switch');
SELECT ok(NOT pg_temp.may_log_in('bar@example.com', 'smtp') AND pg_temp.may_log_in('bar@example.com', 'imap'),
          'covers every mailbox of the domain');
SELECT is((SELECT disabled_services FROM set_mailbox_service('foo@example.com', 'pop3', true)), '{}'::text[],
          'turned on again');

SELECT throws_ok($$SELECT set_mailbox_service('foo@example.com', 'telnet', false)$$, '22023',
    'unknown service "telnet"; the services are imap, pop3, smtp, submission and sieve', 'an unknown service is named');
SELECT throws_ok($$SELECT set_mailbox_service('ghost@example.com', 'imap', false)$$, 'P0002',
    'mailbox "ghost@example.com" does not exist', 'an unknown mailbox');
SELECT throws_ok($$SELECT set_domain_service('example.org', 'imap', false)$$, 'P0002',
    'domain "example.org" is not hosted here', 'an unknown domain');
RESET ROLE;
SELECT throws_ok($$UPDATE users SET disabled_services = '{imap,ftp}' WHERE email = 'foo@example.com'$$, '23514', NULL,
    'the table refuses unknown services even from the owner');
SELECT throws_ok($$SET ROLE mailreader; SELECT disabled_services FROM users$$, '42501', NULL,
    'Postfix''s role does not read the lists (Dovecot decides logins)');
RESET ROLE;

-- an allow-list: a mailbox with every service off logs in nowhere (issue 28: it did for
-- any name outside the five, e.g. `doveadm auth test`'s service doveadm)
SET ROLE alice;
SELECT add_domain('example.org');
SELECT * FROM add_mailbox('all@example.org', 'secret three');
SELECT * FROM add_mailbox('none@example.org', 'secret four');
SELECT * FROM add_mailbox('sieve@example.org', 'secret five');
SELECT set_mailbox_service('none@example.org', s, false) FROM unnest(ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']) s;
SELECT set_mailbox_service('sieve@example.org', s, false) FROM unnest(ARRAY['imap', 'pop3', 'smtp', 'submission']) s;
RESET ROLE;
SELECT is(pg_temp.services('none@example.org'), '{}'::text[],
          'a mailbox with every service off logs in to none, doveadm and unknown names included');
SELECT is(pg_temp.services('all@example.org'), ARRAY['doveadm', 'imap', 'pop3', 'sieve', 'smtp', 'submission'],
          'a mailbox with every service on: the five and doveadm, no unknown name (lmtp, imap-urlauth, IMAP, empty)');
SELECT is(pg_temp.services('sieve@example.org'), ARRAY['doveadm', 'sieve'],
          'doveadm answers while any service is on');
SELECT ok(NOT pg_temp.may_log_in('all@example.org', NULL), 'a NULL service is refused');
SELECT is(dovecot_service_allowed('imap', ARRAY['pop3', 'imap', 'pop3']), false,
          'the mailbox''s and the domain''s lists together, with repeats');
SELECT ok(has_function_privilege('mailauth', 'public.dovecot_service_allowed(text, text[])', 'EXECUTE'),
          'Dovecot''s role may call it');
SELECT ok(NOT has_function_privilege('mailreader', 'public.dovecot_service_allowed(text, text[])', 'EXECUTE'),
          'Postfix''s role may not');

SELECT * FROM finish();
ROLLBACK;

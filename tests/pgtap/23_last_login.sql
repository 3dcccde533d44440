-- Last logins (issue 33, migration 0210): Dovecot's last_login plugin writes them as
-- mailquota, through its dict's upsert, and may write nothing else; its rows are bounded
-- (existing mailboxes, known services, one row per mailbox and service, no future time);
-- stale_mailboxes() lists the mailboxes without a recent login, in a customer's admin's
-- domains only. The real Dovecot's writes: tests/test_last_login.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(32);
\ir _setup.sql

SELECT has_table('public', 'last_logins', 'last_logins exists');
SELECT table_owner_is('public', 'last_logins', 'mailowner', 'last_logins belongs to mailowner');
SELECT fk_ok('public', 'last_logins', 'email', 'public', 'users', 'email');
SELECT col_is_pk('public', 'last_logins', ARRAY['email', 'service'], 'one row per mailbox and service');

-- 1. mailquota: exactly Dovecot's upsert, on those columns
SELECT column_privs_are('public', 'last_logins', col, 'mailquota', privs, format('mailquota on last_logins.%s: %s', col, privs))
  FROM (VALUES ('email', ARRAY['INSERT', 'SELECT']), ('service', ARRAY['INSERT', 'SELECT']),
               ('remote_ip', ARRAY['INSERT', 'SELECT', 'UPDATE']), ('login_epoch', ARRAY['INSERT', 'UPDATE']),
               ('last_login', '{}'::text[])) AS x(col, privs);
SELECT ok(NOT has_table_privilege('mailquota', 'public.last_logins', 'DELETE')
          AND NOT has_table_privilege('mailquota', 'public.last_logins', 'TRUNCATE'), 'mailquota deletes no login');
SELECT is(array(SELECT c.relname::text FROM pg_class c
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
                   AND (has_any_column_privilege('mailquota', c.oid, 'INSERT')
                        OR has_any_column_privilege('mailquota', c.oid, 'UPDATE')
                        OR has_table_privilege('mailquota', c.oid, 'DELETE')) ORDER BY 1),
          ARRAY['last_logins', 'quota_usage'], 'mailquota writes no other table');
SELECT ok(NOT has_table_privilege(r, 'public.last_logins', 'SELECT'), format('%s reads no login', r))
  FROM unnest(ARRAY['mailreader', 'mailauth', 'mailwebmail', 'maildkim', 'maildomainadmin']) AS r;

SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_mailbox('foo@example.com', 'pw pw pw foo');
SELECT add_mailbox('never@example.com', 'pw pw pw never');
SELECT add_mailbox('old@example.org', 'pw pw pw old');
RESET ROLE;

-- 2. Dovecot's statement, as 2.3 sends it, from one address and then another
SET ROLE mailquota;
PREPARE dovecot(bigint, text, text, text) AS
    INSERT INTO last_logins (login_epoch, service, remote_ip, email) VALUES ($1, $2, $3::inet, $4)
    ON CONFLICT (service, remote_ip, email) DO UPDATE SET login_epoch = $1;
EXECUTE dovecot(extract(epoch FROM now())::bigint - 60, 'imap', '192.0.2.1', 'foo@example.com');
EXECUTE dovecot(extract(epoch FROM now())::bigint - 30, 'imap', '192.0.2.1', 'foo@example.com');
EXECUTE dovecot(extract(epoch FROM now())::bigint, 'imap', '2001:db8::1', 'foo@example.com');
EXECUTE dovecot(extract(epoch FROM now() - interval '400 days')::bigint, 'pop3', '192.0.2.9', 'old@example.org');
SELECT throws_ok($$EXECUTE dovecot(1765000000, 'imap', '192.0.2.1', 'nobody@example.com')$$, '23503', NULL,
                 'no row for a mailbox that does not exist');
SELECT throws_ok($$EXECUTE dovecot(1765000000, 'lmtp', '192.0.2.1', 'foo@example.com')$$, '23514', NULL,
                 'nor for a service whose logins are not recorded');
SELECT throws_ok($$EXECUTE dovecot(-1, 'imap', '192.0.2.1', 'foo@example.com')$$, '23514', NULL,
                 'nor a time before 2000');
SELECT throws_ok($$EXECUTE dovecot(1765000000, 'imap', 'not an address', 'foo@example.com')$$, '22P02', NULL,
                 'nor an address that is none');
SELECT throws_ok($$UPDATE last_logins SET last_login = now() + interval '10 years'$$, '42501', NULL,
                 'mailquota cannot set the time shown');
SELECT throws_ok($$UPDATE last_logins SET email = 'never@example.com'$$, '42501', NULL,
                 'nor move a login to another mailbox');
SELECT throws_ok($$UPDATE quota_usage SET email = 'never@example.com'$$, '42501', NULL,
                 'nor touch the usage rows'' keys');
SELECT throws_ok($$UPDATE users SET active = false$$, '42501', NULL, 'nor any mailbox');
EXECUTE dovecot(extract(epoch FROM now() + interval '50 years')::bigint, 'pop3', '192.0.2.1', 'foo@example.com');
RESET ROLE;
SELECT is(array(SELECT service || ' ' || host(remote_ip) FROM last_logins WHERE email = 'foo@example.com' ORDER BY 1),
          ARRAY['imap 2001:db8::1', 'pop3 192.0.2.1'], 'a login from a new address replaces the row: one per service');
SELECT ok((SELECT last_login <= now() FROM last_logins WHERE email = 'foo@example.com' AND service = 'pop3'),
          'a time in the future is shown as now');

-- 3. the listing and the stale mailboxes
SET ROLE mailadmin;
SELECT is((SELECT last_login FROM mailboxes WHERE email = 'foo@example.com'), now(),
          'the mailboxes view shows the newest login over all services');
SELECT is(array(SELECT email FROM stale_mailboxes(180)), ARRAY['never@example.com', 'old@example.org'],
          'stale: never logged in first, then the oldest login; not a mailbox used today');
SELECT is(array(SELECT email FROM stale_mailboxes(500)), ARRAY['never@example.com'], 'a login within the days keeps it off');
SELECT throws_ok($$SELECT * FROM stale_mailboxes(0)$$, '22023', 'days must be a whole number of days, 1 or more, not 0',
                 'at least one day');
RESET ROLE;
CREATE ROLE t_carol NOLOGIN;
GRANT maildomainadmin TO t_carol;
SET ROLE mailadmin;
SELECT ok(grant_domain_admin('t_carol', 'example.org'), 'carol manages example.org');
RESET ROLE;
SET SESSION AUTHORIZATION t_carol;
SELECT is(array(SELECT email FROM stale_mailboxes(180)), ARRAY['old@example.org'],
          'a customer''s admin sees its own domains'' stale mailboxes only');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;

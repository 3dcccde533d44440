-- Login networks (issue 33 item 4, migration 0213, sql/api/46_login_networks.sql): lists
-- of networks per mailbox and per domain, parsed as cidr (no host bits, no empty list),
-- the mailbox's replacing the domain's; what Dovecot's passdbs read as allow_nets (NULL:
-- anywhere); audited and recorded for `dovecot follow`; a customer's admin in its own
-- domains only. Through real Dovecot logins: tests/test_login_networks.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(34);
\ir _setup.sql

-- 1. the columns and who reads them
SELECT col_type_is('public', 'users', 'login_networks', 'cidr[]', 'users.login_networks is cidr[]');
SELECT col_type_is('public', 'transports', 'login_networks', 'cidr[]', 'transports.login_networks is cidr[]');
SELECT col_is_null('public', 'users', 'login_networks', 'NULL: the domain''s list, or anywhere');
SELECT ok(has_column_privilege('mailauth', 'public.users', 'login_networks', 'SELECT')
          AND has_column_privilege('mailauth', 'public.transports', 'login_networks', 'SELECT'),
          'Dovecot''s role reads both lists');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim', 'public']) r
                 WHERE has_function_privilege(r, 'public.set_login_networks(text, text[])', 'EXECUTE')
                    OR has_function_privilege(r, 'public.clear_login_networks(text)', 'EXECUTE')
                    OR has_function_privilege(r, 'public.login_networks_parse(text[])', 'EXECUTE')),
          '{}'::text[], 'no service role sets login networks');

-- 2. set, as mailadmin
SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_alias_domain('example.net', 'example.com');
SELECT add_mailbox('foo@example.com', 'main pw main pw');
SELECT add_mailbox('bar@example.com', 'main pw bar pw');
SELECT add_mailbox('boss@example.org', 'main pw boss pw');
SELECT is(set_login_networks('Foo@Example.COM', ARRAY[' 192.0.2.0/24', '2001:DB8::/32', '198.51.100.7', '192.0.2.0/24']),
          '{192.0.2.0/24,198.51.100.7/32,2001:db8::/32}'::cidr[],
          'parsed, sorted, once each; an address alone is its /32');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', ARRAY['192.0.2.1/24'])$$, '22023',
                 'login network "192.0.2.1/24" is not a network in CIDR notation (192.0.2.0/24, 2001:db8::/32) without host bits',
                 'host bits set are refused, naming the value');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', ARRAY['192.0.2.0/24', 'office'])$$, '22023',
                 'login network "office" is not a network in CIDR notation (192.0.2.0/24, 2001:db8::/32) without host bits',
                 'a name is refused, naming it');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', ARRAY['192.0.2.0/33'])$$, '22023', NULL, 'a /33');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', ARRAY[E'192.0.2.0/24\n'])$$, '22023', NULL,
                 'a line break inside is refused (only spaces around are trimmed)');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', '{}')$$, '22023',
                 'a list of login networks needs at least one network', 'an empty list (Dovecot would refuse everyone)');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', NULL)$$, '22004', NULL, 'a NULL list');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', ARRAY[NULL])$$, '22004', NULL, 'a NULL network');
SELECT throws_ok($$SELECT set_login_networks('foo@example.com', ARRAY(SELECT format('10.0.%s.0/24', i) FROM generate_series(1, 65) i))$$,
                 '22023', 'at most 64 login networks, not 65', 'at most 64');
SELECT throws_ok($$SELECT set_login_networks('nobody@example.com', ARRAY['192.0.2.0/24'])$$, 'P0002',
                 'mailbox "nobody@example.com" does not exist', 'an unknown mailbox');
SELECT throws_ok($$SELECT set_login_networks('nothere.test', ARRAY['192.0.2.0/24'])$$, 'P0002',
                 'domain "nothere.test" is not hosted here', 'a domain not hosted');
SELECT throws_ok($$SELECT set_login_networks('example.net', ARRAY['192.0.2.0/24'])$$, '22023', NULL,
                 'an alias domain (its mailboxes log in as the target''s)');
SELECT is(set_login_networks('example.com', ARRAY['203.0.113.0/24']), '{203.0.113.0/24}'::cidr[], 'a domain''s list');
RESET ROLE;
SELECT throws_ok($$UPDATE users SET login_networks = '{}' WHERE email = 'bar@example.com'$$, '23514', NULL,
                 'even the owner cannot store an empty list');

-- 3. what Dovecot reads (the allow_nets of both passdb queries), as mailauth: the
-- mailbox's list, else its domain's, else NULL (Dovecot ignores a NULL field)
CREATE FUNCTION pg_temp.allow_nets(address text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT array_to_string(coalesce(u.login_networks, t.login_networks), ',')
      FROM public.users u JOIN public.transports t ON t.domain = u.domain WHERE u.email = address
$$;
GRANT EXECUTE ON FUNCTION pg_temp.allow_nets(text) TO PUBLIC;
SET ROLE mailauth;
SELECT is(pg_temp.allow_nets('foo@example.com'), '192.0.2.0/24,198.51.100.7/32,2001:db8::/32',
          'the mailbox''s own list wins, comma-separated as Dovecot wants it');
SELECT is(pg_temp.allow_nets('bar@example.com'), '203.0.113.0/24', 'a mailbox without a list gets its domain''s');
SELECT is(pg_temp.allow_nets('boss@example.org'), NULL, 'neither: NULL, from anywhere (never an empty string)');
RESET ROLE;

-- 4. show and clear
SET ROLE mailadmin;
SELECT results_eq($$SELECT * FROM login_networks('FOO@example.com')$$,
                  $$VALUES ('foo@example.com', ARRAY['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32'],
                            ARRAY['203.0.113.0/24'], ARRAY['192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32'])$$,
                  'show: its own, its domain''s, and the one enforced');
SELECT results_eq($$SELECT * FROM login_networks('boss@example.org')$$,
                  $$VALUES ('boss@example.org', NULL::text[], NULL::text[], NULL::text[])$$, 'show: from anywhere');
SELECT is(clear_login_networks('foo@example.com'), true, 'clear: it had a list');
SELECT is(clear_login_networks('foo@example.com'), false, 'clear again: it had none');
SELECT results_eq($$SELECT effective FROM login_networks('foo@example.com')$$, $$VALUES (ARRAY['203.0.113.0/24'])$$,
                  'cleared, the mailbox falls back to its domain''s list');
SELECT is(clear_login_networks('example.com'), true, 'a domain''s list is cleared');
SELECT throws_ok($$SELECT clear_login_networks('nobody@example.com')$$, 'P0002', NULL, 'clear: an unknown mailbox');
SELECT throws_ok($$SELECT login_networks('nothere.test')$$, 'P0002', NULL, 'show: a domain not hosted');
RESET ROLE;

-- 5. audited; Dovecot's cache flushed by `dovecot follow`
SELECT is(array(SELECT table_name || ' ' || operation || ' ' || row_key || ' ' || array_to_string(changed, ',')
                  FROM audit_log WHERE 'login_networks' = ANY (changed) ORDER BY id),
          ARRAY['users UPDATE foo@example.com login_networks', 'transports UPDATE example.com login_networks',
                'users UPDATE foo@example.com login_networks', 'transports UPDATE example.com login_networks'],
          'each set and clear is audited, naming the column (a clear of nothing writes nothing)');
SELECT ok(EXISTS (SELECT FROM auth_cache_changes WHERE email = 'foo@example.com')
          AND EXISTS (SELECT FROM auth_cache_changes WHERE domain = 'example.com' AND email IS NULL),
          'the mailbox''s and the domain''s cached logins are recorded for flushing');

-- 6. a customer's admin: its own domains only
CREATE ROLE t_nets_alice LOGIN;
GRANT maildomainadmin TO t_nets_alice;
SELECT grant_domain_admin('t_nets_alice', 'example.com');
SET SESSION AUTHORIZATION t_nets_alice;
SELECT is(set_login_networks('example.com', ARRAY['192.0.2.0/24']), '{192.0.2.0/24}'::cidr[],
          'a customer''s admin sets its own domain''s list');
SELECT throws_ok($$SELECT set_login_networks('boss@example.org', ARRAY['192.0.2.0/24'])$$, '42501',
                 'admin "t_nets_alice" may not manage domain "example.org"', 'and not another customer''s mailbox');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;

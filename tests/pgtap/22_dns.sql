-- The DKIM records `mailbook dns` prints (issue 34, sql/api/65_dkim.sql dkim_dns_records()):
-- a domain's pending and active keys, never a retired one; for mailadmin, and for a
-- customer's admin only within its scope (the login played with SET SESSION AUTHORIZATION,
-- as in 18_admin_scopes.sql). Against a real DNS server on loopback: tests/test_dns.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(8);
\ir _setup.sql

CREATE TEMP TABLE t_pair AS SELECT E'-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n'::text AS private_key,
                                   repeat('A', 392) AS public_key, repeat('B', 43) || '=' AS ed25519_public_key;
GRANT SELECT ON t_pair TO PUBLIC;

SELECT ok(has_function_privilege('mailadmin', 'public.dkim_dns_records(text)', 'EXECUTE')
          AND has_function_privilege('maildomainadmin', 'public.dkim_dns_records(text)', 'EXECUTE'),
          'mailadmin and maildomainadmin may call dkim_dns_records()');
SELECT is(array(SELECT r FROM unnest(ARRAY['maildkim', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'public']) r
                 WHERE has_function_privilege(r, 'public.dkim_dns_records(text)', 'EXECUTE')),
          '{}'::text[], 'no service role may');

SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, public_key FROM t_pair;
SELECT add_dkim_key('example.com', 'mb202601', 'rsa-sha256');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, public_key FROM t_pair;
SELECT add_dkim_key('example.com', 'mb202612', 'rsa-sha256');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, ed25519_public_key FROM t_pair;
SELECT add_dkim_key('example.com', 'mb202612e', 'ed25519-sha256');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, public_key FROM t_pair;
SELECT add_dkim_key('example.org', 'mb202612', 'rsa-sha256');
SELECT activate_dkim_key('example.com', 'mb202601');
SELECT activate_dkim_key('example.com', 'mb202612');  -- mb202601 retires
SELECT results_eq($$SELECT name, selector, state, txt FROM dkim_dns_records('Example.COM')$$,
                  $$VALUES ('mb202612._domainkey.example.com.', 'mb202612', 'active', 'v=DKIM1; k=rsa; p=' || repeat('A', 392)),
                           ('mb202612e._domainkey.example.com.', 'mb202612e', 'pending', 'v=DKIM1; k=ed25519; p=' || repeat('B', 43) || '=')$$,
                  'the active and the pending key are published, the retired one not, nor another domain''s');
SELECT throws_ok($$SELECT * FROM dkim_dns_records('nowhere.example')$$, '23503',
                 'domain "nowhere.example" is not hosted here', 'a domain not hosted is named');
RESET ROLE;

CREATE ROLE t_alice NOLOGIN;
GRANT maildomainadmin TO t_alice;
SELECT grant_domain_admin('t_alice', 'example.com');
SET SESSION AUTHORIZATION t_alice;
SELECT is((SELECT count(*) FROM dkim_dns_records('example.com')), 2::bigint, 'a customer''s admin reads its domain''s records');
SELECT throws_ok($$SELECT * FROM dkim_dns_records('example.org')$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'not another customer''s');
SELECT throws_ok($$SELECT * FROM dkim_dns_records('nowhere.example')$$, '42501',
                 'admin "t_alice" may not manage domain "nowhere.example"', 'and learns nothing of unhosted domains');
SELECT throws_ok($$SELECT private_key FROM dkim_keys$$, '42501', NULL, 'nor any private key');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;

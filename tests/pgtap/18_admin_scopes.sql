-- A customer's admin (issue 32, migration 0207, sql/api/35_scopes.sql): a login in
-- maildomainadmin manages the domains admin_scopes lists for it, and their alias domains,
-- and nothing else. The check reads session_user (played here with SET SESSION
-- AUTHORIZATION, which SET ROLE cannot undo); the role reads no table. Each function
-- across the boundary, through real logins, and the catalogue-wide refusal of every
-- function not granted: tests/test_admin_scopes.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(31);
\ir _setup.sql

-- 1. the role and the table
SELECT has_role('maildomainadmin', 'role maildomainadmin exists');
SELECT ok(NOT rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolbypassrls,
          'maildomainadmin cannot log in and holds no special attribute')
  FROM pg_roles WHERE rolname = 'maildomainadmin';
SELECT is(array(SELECT c.relname::text FROM pg_class c,
                       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'p')
                   AND has_table_privilege('maildomainadmin', c.oid, p)),
          '{}'::text[], 'maildomainadmin holds no privilege on any table or view');
SELECT table_owner_is('public', 'admin_scopes', 'mailowner', 'admin_scopes belongs to mailowner');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail']) r
                 WHERE has_table_privilege(r, 'public.admin_scopes', 'SELECT')),
          '{}'::text[], 'no role reads admin_scopes directly: domain_admins() is the way');
SELECT is(array(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege('maildomainadmin', p.oid, 'EXECUTE')
                   AND NOT p.prosecdef),
          '{}'::text[], 'maildomainadmin may call only SECURITY DEFINER API functions');

-- 2. two customers
CREATE ROLE t_alice NOLOGIN;
CREATE ROLE t_bob NOLOGIN;
CREATE ROLE t_both NOLOGIN;
GRANT maildomainadmin TO t_alice, t_bob, t_both;
GRANT mailadmin TO t_both;
SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_alias_domain('example.net', 'example.com');
SELECT add_mailbox('boss@example.org', 'pw pw pw bob');
SELECT ok(grant_domain_admin('t_alice', 'EXAMPLE.com'), 'mailadmin grants alice example.com');
SELECT ok(NOT grant_domain_admin('t_alice', 'example.com'), 'granting again changes nothing');
SELECT ok(grant_domain_admin('t_bob', 'example.org'), 'and bob example.org');
SELECT throws_ok($$SELECT grant_domain_admin('t_alice', 'example.net')$$, '22023', NULL,
                 'an alias domain is not granted: it follows its target');
SELECT throws_ok($$SELECT grant_domain_admin('t_nobody', 'example.com')$$, '42704', NULL, 'nor to a role that does not exist');
SELECT throws_ok($$SELECT grant_domain_admin('t_both', 'example.com')$$, '22023', NULL,
                 'nor to a member of mailadmin, which manages every domain');
SELECT throws_ok($$SELECT grant_domain_admin('mailreader', 'example.com')$$, '22023', NULL,
                 'nor to one of mailbook''s own roles: Postfix''s login gains nothing');
SELECT throws_ok($$SELECT grant_domain_admin('t_alice', 'nothere.test')$$, '23503', NULL, 'nor a domain not hosted here');
RESET ROLE;
SELECT is(array(SELECT operation || ' ' || row_key FROM audit_log WHERE table_name = 'admin_scopes' ORDER BY id),
          ARRAY['INSERT t_alice -> example.com', 'INSERT t_bob -> example.org'], 'each scope granted is audited');

-- 3. alice, as her login
SET SESSION AUTHORIZATION t_alice;
SELECT ok(admin_may_manage('example.com') AND admin_may_manage('Example.COM'), 'alice manages example.com');
SELECT ok(admin_may_manage('example.net'), 'and its alias domain example.net');
SELECT ok(NOT admin_may_manage('example.org') AND NOT admin_may_manage('nothere.test'),
          'but not bob''s example.org, nor a domain not hosted');
SELECT is(array(SELECT managed_domains() ORDER BY 1), ARRAY['example.com', 'example.net'], 'managed_domains() lists hers');
SELECT is(array(SELECT admin || ' ' || domain FROM domain_admins()), ARRAY['t_alice example.com'],
          'domain_admins() shows her own scope only');
SELECT lives_ok($$SELECT add_mailbox('ann@example.com', 'pw pw pw ann')$$, 'she adds a mailbox in her domain');
SELECT throws_ok($$SELECT add_mailbox('eve@example.org', 'pw pw pw eve')$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'but not in bob''s, named in the refusal');
SELECT throws_ok($$SELECT set_password('boss@example.org', 'pw pw pw eve')$$, '42501', NULL,
                 'nor set the password of bob''s mailbox');
SELECT throws_ok($$SELECT remove_mailbox('nobody@example.org')$$, '42501', NULL,
                 'a mailbox that does not exist across the boundary is refused alike (no oracle)');
SELECT is(array(SELECT email FROM my_mailboxes()), ARRAY['ann@example.com'], 'my_mailboxes() shows hers only');
SELECT throws_ok($$SELECT * FROM admin_scopes$$, '42501', NULL, 'she cannot read admin_scopes');
SELECT throws_ok($$SELECT email FROM users$$, '42501', NULL, 'nor users');
SELECT throws_ok($$SELECT * FROM mailboxes$$, '42501', NULL, 'nor the mailboxes view');
SELECT throws_ok($$SELECT grant_domain_admin('t_alice', 'example.org')$$, '42501', NULL, 'nor widen her own scope');
RESET SESSION AUTHORIZATION;

-- 4. a login in both roles is a global admin; a removed domain takes its scopes along
SET SESSION AUTHORIZATION t_both;
SELECT ok(admin_may_manage('example.org'), 'a member of mailadmin too manages every domain');
RESET SESSION AUTHORIZATION;
SET ROLE mailadmin;
SELECT remove_domain('example.org', true);
SELECT is(array(SELECT admin || ' ' || domain FROM domain_admins()), ARRAY['t_alice example.com'],
          'removing a domain removes its scopes');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

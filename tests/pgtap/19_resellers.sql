-- Resellers (issue 32, migration 0208, sql/api/30_domains.sql and 35_scopes.sql): a
-- scoped admin with a row in resellers may also create domains, which enter its scope,
-- within limits that triggers keep for everyone; a plain domain admin may not. The
-- login is played with SET SESSION AUTHORIZATION, as in 18_admin_scopes.sql. Through
-- real logins, the CLI and 8 racing sessions: tests/test_resellers.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(25);
\ir _setup.sql

-- 1. the table, its triggers and who reads it
SELECT table_owner_is('public', 'resellers', 'mailowner', 'resellers belongs to mailowner');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim']) r
                 WHERE has_table_privilege(r, 'public.resellers', 'SELECT')),
          '{}'::text[], 'no role reads resellers directly: resellers() is the way');
SELECT triggers_are('public', 'resellers', ARRAY['audit_insert', 'audit_delete', 'audit_update', 'audit_truncate'],
                    'resellers is audited like every mail table');
SELECT has_trigger('public', 'users', t, format('users has %s', t))
  FROM unnest(ARRAY['reseller_limits_on_insert', 'reseller_limits_on_update',
                    'mailbox_quota_cap_on_insert', 'mailbox_quota_cap_on_update']) AS t;
SELECT has_trigger('public', 'admin_scopes', 'reseller_limits_on_insert', 'a domain given to a reseller is counted');
SELECT has_column('public', 'transports', 'max_mailbox_quota_bytes', 'transports caps the largest mailbox quota');
SELECT is(mailbook_role_names(),
          ARRAY['mailowner', 'mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim'],
          'mailbook_role_names() lists sql/roles.sql''s roles');

-- 2. a reseller and a customer's domain admin
CREATE ROLE t_rex NOLOGIN;
CREATE ROLE t_dora NOLOGIN;
GRANT maildomainadmin TO t_rex, t_dora;
SET ROLE mailadmin;
SELECT add_domain('dora.test');
SELECT grant_domain_admin('t_dora', 'dora.test');
SELECT lives_ok($$SELECT make_reseller('t_rex', 2, 2)$$, 'mailadmin makes rex a reseller: 2 domains, 2 mailboxes');
SELECT throws_ok($$SELECT make_reseller('mailreader', 1, 1)$$, '22023', NULL, 'never one of mailbook''s roles');
SELECT throws_ok($$SELECT make_reseller('t_nobody', 1, 1)$$, '42704', NULL, 'nor a role that does not exist');
RESET ROLE;
SELECT is(array(SELECT operation || ' ' || row_key FROM audit_log WHERE table_name = 'resellers'),
          ARRAY['INSERT t_rex'], 'making a reseller is audited');

SET SESSION AUTHORIZATION t_rex;
SELECT lives_ok($$SELECT add_domain('rex.test')$$, 'rex adds a domain');
SELECT is(array(SELECT managed_domains()), ARRAY['rex.test'], 'which enters its scope');
SELECT lives_ok($$SELECT add_alias_domain('rex.example', 'rex.test')$$, 'and an alias domain of it');
SELECT throws_ok($$SELECT add_alias_domain('mine.example', 'dora.test')$$, '42501',
                 'admin "t_rex" may not manage domain "dora.test"', 'but never an alias domain of someone else''s');
SELECT lives_ok($$SELECT add_domain('rex2.test')$$, 'a second domain');
SELECT throws_ok($$SELECT add_domain('rex3.test')$$, '23514',
                 'reseller "t_rex" allows at most 2 domain(s) and has 2 already', 'a third is past its limit');
SELECT lives_ok($$SELECT add_mailbox('a@rex.test', 'pw pw pw a'); SELECT add_mailbox('b@rex2.test', 'pw pw pw b')$$,
                'two mailboxes across its domains');
SELECT throws_ok($$SELECT add_mailbox('c@rex.test', 'pw pw pw c')$$, '23514',
                 'reseller "t_rex" allows at most 2 mailbox(es) across its domains and has 2 already',
                 'a third is past its limit');
SELECT is((SELECT kind || ' ' || used_domains || ' ' || used_mailboxes FROM whoami()), 'reseller 2 2',
          'whoami() says what rex is and uses');
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION t_dora;
SELECT throws_ok($$SELECT add_domain('dora2.test')$$, '42501',
                 'admin "t_dora" is not a reseller: it may not add domains', 'a plain domain admin adds no domain');
RESET SESSION AUTHORIZATION;

-- 3. the limits bind mailadmin too
SET ROLE mailadmin;
SELECT throws_ok($$SELECT add_mailbox('d@rex2.test', 'pw pw pw d')$$, '23514', NULL,
                 'mailadmin, too, meets the reseller''s limit');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

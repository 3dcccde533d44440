-- Send-as grants: who may use which envelope sender, as sender-login.cf asks it through
-- postfix_sender_logins(); the grant functions' refusals; who may touch the table.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(19);
\ir _setup.sql

SELECT has_table('public', 'send_as', 'send_as exists');
SELECT col_is_pk('public', 'send_as', ARRAY['address', 'login'], 'one row per (address, login): the lookup leads with the address');
SELECT fk_ok('public', 'send_as', 'login', 'public', 'users', 'email');
SELECT trigger_is('public', 'send_as', 'audit_insert', 'public', 'audit_statement', 'grants are audited');

-- who may send as an address, as sender-login.cf asks it
CREATE FUNCTION pg_temp.logins(address text) RETURNS text[] LANGUAGE sql AS
$$ SELECT coalesce(array_agg(DISTINCT l ORDER BY l), '{}')
     FROM postfix_sender_logins(split_part(address, '@', 1), split_part(address, '@', 2)) AS l $$;

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT * FROM add_mailbox('bar@example.com', 'secret two');
SELECT add_alias('team@example.com', 'foo@example.com');
SELECT add_alias('@example.com', 'bar@example.com');
SELECT add_alias_domain('example.net', 'example.com');

SELECT is(pg_temp.logins('foo@example.com'), ARRAY['foo@example.com'], 'a mailbox owns its address');
SELECT is(pg_temp.logins('team@example.com'), ARRAY['foo@example.com'], 'and the aliases that forward to it');
SELECT is(pg_temp.logins('team@example.net'), ARRAY['foo@example.com'], 'also through an alias domain');
SELECT is(pg_temp.logins('anything@example.com'), '{}'::text[], 'a catch-all grants nothing');
SELECT is(pg_temp.logins('info@example.org'), '{}'::text[], 'an address nobody owns: nobody');

SELECT lives_ok($$SELECT allow_send_as('Foo@Example.COM', 'Info@Example.org')$$, 'mailadmin grants, any case');
SELECT is(pg_temp.logins('info@example.org'), ARRAY['foo@example.com'], 'the grantee now owns it, stored lower case');
SELECT lives_ok($$SELECT allow_send_as('bar@example.com', 'team@example.com')$$, 'a second owner for an alias');
SELECT is(pg_temp.logins('team@example.com'), ARRAY['bar@example.com', 'foo@example.com'], 'both own it');

SELECT throws_ok($$SELECT allow_send_as('foo@example.com', 'info@example.org')$$, '23505',
    '"foo@example.com" may already send as "info@example.org"', 'a grant twice is refused, naming both');
SELECT throws_ok($$SELECT allow_send_as('ghost@example.com', 'info@example.org')$$, '23503',
    'login "ghost@example.com" is no mailbox', 'only a mailbox may be granted');
SELECT throws_like($$SELECT allow_send_as('foo@example.com', 'not an address')$$, '%not an address%',
    'an invalid address is refused, naming it');
SELECT throws_ok($$SELECT disallow_send_as('foo@example.com', 'nobody@example.org')$$, 'P0002',
    '"foo@example.com" has no send-as grant for "nobody@example.org"', 'taking back what was never granted is an error');

SELECT remove_mailbox('foo@example.com');
RESET ROLE;
SELECT is((SELECT count(*) FROM send_as WHERE login = 'foo@example.com'), 0::bigint, 'a removed mailbox leaves no grant');
SELECT throws_ok($$SET ROLE mailreader; SELECT count(*) FROM send_as$$, '42501', NULL,
    'Postfix''s role reads grants only through postfix_sender_logins()');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

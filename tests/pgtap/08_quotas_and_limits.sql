-- Quotas and per-domain caps: what Dovecot's user_query hands over as quota_rule, and
-- the caps enforced for the API and the owner's DML alike, each refusal naming the cap.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(18);
\ir _setup.sql

SELECT has_column('public', 'users', 'quota_messages', 'users.quota_messages exists');
SELECT col_is_null('public', 'transports', c, format('transports.%s is optional (no cap)', c))
  FROM unnest(ARRAY['max_mailboxes', 'max_aliases', 'max_quota_bytes']) AS c;
SELECT trigger_is('public', 'users', 'domain_limits_on_insert', 'public', 'refuse_over_domain_limits',
                  'mailbox caps are the table''s');

-- quota_rule as dovecot/dovecot-sql.conf.ext's user_query builds it
CREATE FUNCTION pg_temp.quota_rule(address text) RETURNS text LANGUAGE sql AS
$$ SELECT CASE WHEN u.quota_bytes IS NOT NULL OR u.quota_messages IS NOT NULL
               THEN '*' || coalesce(':bytes=' || u.quota_bytes, '') || coalesce(':messages=' || u.quota_messages, '') END
     FROM users u WHERE u.email = address $$;

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT is(pg_temp.quota_rule('foo@example.com'), NULL, 'no quota: no quota_rule');
SELECT lives_ok($$SELECT set_mailbox_quota('Foo@example.com', 1000000, 500)$$, 'bytes and messages');
SELECT is(pg_temp.quota_rule('foo@example.com'), '*:bytes=1000000:messages=500', 'both reach quota_rule');
SELECT lives_ok($$SELECT set_mailbox_quota('foo@example.com', NULL, 20)$$, 'messages only');
SELECT is(pg_temp.quota_rule('foo@example.com'), '*:messages=20', 'messages only reach quota_rule');
SELECT throws_ok($$SELECT set_mailbox_quota('foo@example.com', 0)$$, '22023', NULL, 'a zero quota is refused');

SELECT set_domain_limits('example.com', 2, 1, NULL);
SELECT * FROM add_mailbox('bar@example.com', 'secret two');
SELECT throws_ok($$SELECT add_mailbox('baz@example.com', 'secret three')$$, '23514',
    'domain "example.com" allows at most 2 mailbox(es)', 'the mailbox cap, named');
SELECT add_alias('team@example.com', 'foo@example.com');
SELECT lives_ok($$SELECT add_alias('team@example.com', 'bar@example.com')$$,
                'a second destination of the same alias is not a second alias');
SELECT throws_ok($$SELECT add_alias('sales@example.com', 'foo@example.com')$$, '23514',
    'domain "example.com" allows at most 1 alias(es)', 'the alias cap, named');

SELECT set_domain_limits('example.com', NULL, NULL, 3000000);
SELECT throws_ok($$SELECT set_mailbox_quota('bar@example.com', NULL, 10)$$, '23514',
    'domain "example.com" caps its total quota at 3000000 bytes, so a mailbox added or changed there needs a quota',
    'under a total quota cap, a changed mailbox needs a byte quota');
SELECT throws_ok($$SELECT set_mailbox_quota('foo@example.com', 1000000); SELECT set_mailbox_quota('bar@example.com', 2500000)$$,
    '23514', 'domain "example.com" caps its total quota at 3000000 bytes; its mailboxes would have 3500000',
    'and the sum must fit');
SELECT lives_ok($$SELECT set_mailbox_quota('foo@example.com', 1000000); SELECT set_mailbox_quota('bar@example.com', 2000000)$$,
    'quotas that add up to the cap');
RESET ROLE;
SELECT throws_ok($$INSERT INTO users (email, password, maildir, quota_bytes)
                   VALUES ('qux@example.com', '{BLF-CRYPT}' || crypto.crypt('x', crypto.gen_salt('bf', 4)), 'example.com/qux/', 10)$$,
    '23514', NULL, 'the owner''s own DML meets the caps too');

SELECT * FROM finish();
ROLLBACK;

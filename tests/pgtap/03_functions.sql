-- The provisioning API as a psql user calls it: a member of mailadmin, unqualified names.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(24);
\ir _setup.sql

SELECT has_function('public', f, args, format('%s(%s) exists', f, array_to_string(args, ', ')))
  FROM (VALUES ('add_domain', ARRAY['text', 'text', 'integer']),
               ('remove_domain', ARRAY['text', 'boolean']),
               ('set_domain_active', ARRAY['text', 'boolean']),
               ('add_mailbox', ARRAY['text', 'text', 'text', 'text', 'bigint']),
               ('add_mailbox_hashed', ARRAY['text', 'text', 'text', 'text', 'bigint']),
               ('set_password', ARRAY['text', 'text']),
               ('verify_password', ARRAY['text', 'text']),
               ('remove_mailbox', ARRAY['text']),
               ('set_mailbox_active', ARRAY['text', 'boolean']),
               ('add_alias', ARRAY['text', 'text']),
               ('add_alias_domain', ARRAY['text', 'text']),
               ('remove_alias', ARRAY['text', 'text'])) AS v(f, args);
SELECT is_definer('public', 'add_mailbox', ARRAY['text', 'text', 'text', 'text', 'bigint'],
                  'add_mailbox runs as its owner');

SET ROLE alice;  -- a DBA account that is a member of mailadmin

SELECT lives_ok($$SELECT add_domain('example.com')$$, 'add_domain as mailadmin');
SELECT results_eq($$SELECT email, maildir FROM add_mailbox('Foo@Example.com', 'secret', 'Foo Lastname')$$,
                  $$VALUES ('foo@example.com'::text, 'example.com/foo/'::text COLLATE "C")$$,
                  'add_mailbox lower-cases the address and derives domain/localpart/');
SET ROLE mailowner;  -- verify_password is the DBA's, not mailadmin's
SELECT ok(verify_password('foo@example.com', 'secret'), 'the password verifies');
SELECT ok(NOT verify_password('foo@example.com', 'Secret'), 'a wrong password does not');
SET ROLE alice;
SELECT lives_ok($$SELECT set_password('foo@example.com', 'new secret')$$, 'set_password');
SET ROLE mailowner;
SELECT ok(verify_password('foo@example.com', 'new secret'), 'the new password verifies');
SET ROLE alice;
SELECT lives_ok($$SELECT add_alias('postmaster@example.com', 'foo@example.com')$$, 'add_alias');
SELECT results_eq($$SELECT alias, email FROM aliases$$,
                  $$VALUES ('postmaster@example.com'::text, 'foo@example.com'::text)$$, 'the alias is listed');
SELECT is((SELECT active FROM set_mailbox_active('foo@example.com', false)), false, 'a mailbox can be disabled');
SELECT lives_ok($$SELECT remove_domain('example.com', cascade => true)$$, 'remove_domain with cascade');
SELECT is((SELECT count(*)::int FROM mailboxes), 0, 'nothing is left');

RESET ROLE;
SELECT * FROM finish();
ROLLBACK;

-- A customer's admin on the remaining paths (issue 32): send-as and services
-- (55_send_as.sql, 45_services.sql), import (60_import.sql), the maildir queue
-- (80_maildirs.sql), and what it reads of its own domains (85_scoped_reads.sql). The login
-- is played with SET SESSION AUTHORIZATION, as in 18_admin_scopes.sql. Through real logins
-- and the CLI, with every refusal changing nothing: tests/test_admin_scopes_paths.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(26);
\ir _setup.sql

-- 1. the grants: the scope-checked paths, and not the queue's hands
SELECT is(array(SELECT f FROM unnest(ARRAY[
                    'allow_send_as(text,text)', 'disallow_send_as(text,text)',
                    'set_mailbox_service(text,text,boolean)', 'set_domain_service(text,text,boolean)',
                    'import_batch(boolean)', 'queued_maildirs()', 'my_domains()',
                    'my_audit_log(text,text,timestamp with time zone,integer)', 'my_export()']) AS f
                 WHERE NOT has_function_privilege('maildomainadmin', f, 'EXECUTE')),
          '{}'::text[], 'maildomainadmin may call the scope-checked send-as, services, import and reads');
SELECT is(array(SELECT f FROM unnest(ARRAY['claim_maildir(text)', 'forget_maildir(text)', 'maildir_in_use(text)',
                                           'audit_key_domains(text,text)']) AS f
                 WHERE has_function_privilege('maildomainadmin', f, 'EXECUTE')),
          '{}'::text[], 'but not claim or forget a queued maildir: that is root''s cron, as mailadmin');
SELECT ok(has_any_column_privilege('maildomainadmin', 'public.import_staging', 'INSERT')
          AND NOT has_any_column_privilege('maildomainadmin', 'public.import_staging', 'SELECT')
          AND NOT has_column_privilege('maildomainadmin', 'public.import_staging', 'batch', 'INSERT'),
          'it may stage an import (not read one, nor pick the batch), as mailadmin may');

-- 2. whose is an audit row
SELECT is(audit_key_domains('aliases', '@example.com -> box@example.org'), ARRAY['example.com'],
          'an alias is its own domain''s, whatever its destination');
SELECT is(audit_key_domains('send_as', 'box@example.com -> info@example.org'), ARRAY['example.com'],
          'a send-as grant is its login''s domain''s');
SELECT is(audit_key_domains('users', 'a@example.com => a@example.org'), ARRAY['example.com', 'example.org'],
          'a changed key names both sides');
SELECT is(audit_key_domains('settings', NULL), NULL::text[], 'the settings are no customer''s');
SELECT is(audit_key_domains('admin_scopes', 't -> example.com'), ARRAY[NULL::text], 'nor is a scope row, by domain');

-- 3. two customers
CREATE ROLE t_alice NOLOGIN;
CREATE ROLE t_bob NOLOGIN;
GRANT maildomainadmin TO t_alice, t_bob;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_alias_domain('example.net', 'example.com');
SELECT grant_domain_admin('t_alice', 'example.com');
SELECT grant_domain_admin('t_bob', 'example.org');
SELECT add_mailbox('box@example.com', 'pw pw pw box');
SELECT add_mailbox('box@example.org', 'pw pw pw box');
SELECT add_mailbox('gone@example.com', 'pw pw pw box');
SELECT add_mailbox('gone@example.org', 'pw pw pw box');
SELECT remove_mailbox('gone@example.com');
SELECT remove_mailbox('gone@example.org');
UPDATE settings SET bcrypt_cost = bcrypt_cost + 1;

SET SESSION AUTHORIZATION t_alice;
SELECT lives_ok($$SELECT allow_send_as('box@example.com', 'sales@example.net')$$,
                'alice lets her mailbox send as an address of her alias domain');
SELECT throws_ok($$SELECT allow_send_as('box@example.com', 'box@example.org')$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'but not as bob''s address');
SELECT throws_ok($$SELECT allow_send_as('box@example.org', 'sales@example.com')$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'nor bob''s mailbox as hers');
SELECT throws_ok($$SELECT disallow_send_as('box@example.org')$$, '42501', NULL, 'nor take bob''s grants away');
SELECT lives_ok($$SELECT set_domain_service('example.com', 'pop3', false)$$, 'she turns a service off for her domain');
SELECT throws_ok($$SELECT set_domain_service('example.org', 'pop3', false)$$, '42501',
                 'admin "t_alice" may not manage domain "example.org"', 'not for bob''s');
SELECT throws_ok($$SELECT set_mailbox_service('box@example.org', 'imap', false)$$, '42501', NULL,
                 'nor for bob''s mailbox');
INSERT INTO import_staging (kind, address, password) VALUES ('mailbox', 'new@example.com', 'pw pw pw new'),
                                                            ('alias', '@example.org', NULL);
SELECT results_eq($$SELECT line, problem FROM import_batch(true)$$,
                  $$VALUES (3, 'admin "t_alice" may not manage domain "example.org"')$$,
                  'an import naming bob''s domain is refused, by line');
SELECT is(array(SELECT domain FROM my_domains()), ARRAY['example.com', 'example.net'], 'my_domains() lists hers');
SELECT is(array(SELECT email FROM queued_maildirs()), ARRAY['gone@example.com'], 'the queue shows her removals only');
SELECT throws_ok($$SELECT claim_maildir('example.com/gone/')$$, '42501', NULL, 'and she may not claim one');
SELECT throws_ok($$SELECT forget_maildir('example.com/gone/')$$, '42501', NULL, 'nor forget one');
SELECT is(array(SELECT DISTINCT address FROM my_export() WHERE kind = 'mailbox'), ARRAY['box@example.com'],
          'my_export() carries her mailboxes');
SELECT ok(NOT EXISTS (SELECT FROM my_export() WHERE password_hash IS NOT NULL), 'never a hash');
SELECT ok(NOT EXISTS (SELECT FROM my_audit_log(max_rows => 1000)
                       WHERE row_key IS NULL OR row_key LIKE '%example.org%' OR table_name = 'settings'),
          'my_audit_log() shows nothing of bob''s, nor the settings');
SELECT ok(EXISTS (SELECT FROM my_audit_log('send_as', 'sales@example.net', NULL, 10)), 'but her own changes');
SELECT throws_ok($$SELECT * FROM audit_log$$, '42501', NULL, 'the table stays unreadable');
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION t_bob;
SELECT is(array(SELECT row_key FROM my_audit_log('admin_scopes', NULL, NULL, 10)), ARRAY['t_bob -> example.org'],
          'bob sees his own scope''s rows, not alice''s');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;

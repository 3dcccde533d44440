-- Delete with a grace period (issue 33 item 6, migration 0214, sql/api/40_mailboxes.sql,
-- 80_maildirs.sql): a mailbox removed with keep_days leaves every lookup, keeps its
-- address and maildir from reuse, comes back whole with restore_mailbox(), and after the
-- window its maildir joins the purge queue. Through the real Postfix, the CLI and scoped
-- logins: tests/test_grace_delete.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(43);
\ir _setup.sql

-- 1. the table, who reads it, its triggers
SELECT table_owner_is('public', 'removed_mailboxes', 'mailowner', 'removed_mailboxes belongs to mailowner');
SELECT is(array(SELECT r FROM unnest(ARRAY['mailadmin', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota', 'mailwebmail', 'maildkim']) r
                 WHERE has_table_privilege(r, 'public.removed_mailboxes', 'SELECT')),
          '{}'::text[], 'no role reads removed_mailboxes (hashes): removed_mailboxes_list() is the way');
SELECT triggers_are('public', 'removed_mailboxes', ARRAY['audit_insert', 'audit_delete', 'audit_update', 'audit_truncate'],
                    'removed_mailboxes is audited like every mail table');
SELECT has_trigger('public', t, n, format('%s has %s', t, n))
  FROM (VALUES ('users', 'users_removed_apart'), ('users', 'users_removed_apart_on_update'),
               ('aliases', 'aliases_removed_apart'), ('aliases', 'aliases_removed_apart_on_update')) AS x(t, n);
-- restore_mailbox() keeps what went with the mailbox: every table that cascades from
-- users is named in remove_mailbox(); a new one must be added there (and here)
SELECT is(array(SELECT c.conrelid::regclass::text FROM pg_constraint c
                 WHERE c.contype = 'f' AND c.confrelid = 'public.users'::regclass ORDER BY 1),
          ARRAY['app_passwords', 'former_addresses', 'last_logins', 'quota_usage', 'send_as', 'vacations'],
          'the tables that reference users are the ones remove_mailbox() keeps');

-- 2. a mailbox with everything, removed for 30 days
SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT * FROM add_mailbox('foo@example.com', 'secret one', 'Foo Person', NULL, 5000000);
SELECT set_mailbox_service('foo@example.com', 'pop3', false);
SELECT add_alias('info@example.com', 'foo@example.com');
SELECT add_alias('fwd@example.org', 'foo@example.com');
SELECT allow_send_as('foo@example.com', 'boss@example.org');
SELECT set_vacation('foo@example.com', 'Away', 'Back soon');
SELECT add_app_password('foo@example.com', 'phone', ARRAY['imap']) IS NOT NULL;
RESET ROLE;
CREATE TEMP TABLE before AS
SELECT (SELECT to_jsonb(u) - 'modified' FROM users u WHERE email = 'foo@example.com') AS box,
       (SELECT hash FROM app_passwords WHERE email = 'foo@example.com') AS app_hash;
GRANT SELECT ON before TO PUBLIC;
SET ROLE alice;
SELECT lives_ok($$SELECT remove_mailbox('foo@example.com', 30)$$, 'remove_mailbox(email, 30) removes with a grace period');
SELECT is_empty($$SELECT * FROM mailboxes WHERE email = 'foo@example.com'$$, 'the mailbox is gone from the listing');
SELECT is_empty($$SELECT * FROM postfix_mailbox('foo', 'example.com')$$, 'and from Postfix''s virtual_mailbox_maps (550)');
SELECT is_empty($$SELECT * FROM aliases WHERE email = 'foo@example.com'$$, 'the aliases that forwarded to it went, as before');
SELECT is_empty($$SELECT * FROM queued_maildirs()$$, 'its maildir is not queued for purging meanwhile');
SELECT results_eq($$SELECT email, maildir, quota_bytes, restorable, aliases, purge_after::date FROM removed_mailboxes_list()$$,
                  $$VALUES ('foo@example.com', 'example.com/foo/', 5000000::bigint, true, 2, (now() + interval '30 days')::date)$$,
                  'removed_mailboxes_list() shows it, restorable for 30 days, with its 2 alias rows');

-- 3. nothing of it is reusable meanwhile
SELECT throws_like($$SELECT add_mailbox('foo@example.com', 'another one')$$,
                   '"foo@example.com" belongs to a mailbox removed with a grace period: it can be restored, or reused after 2%',
                   'a new mailbox with its address is refused, naming the address and the date');
SELECT throws_ok($$SELECT add_mailbox('foo@example.com', 'another one')$$, '23505', NULL, 'with 23505');
SELECT throws_ok($$SELECT add_alias('foo@example.com', 'someone@elsewhere.test')$$, '23505', NULL, 'so is a new alias of its address');
SELECT throws_ok($$SELECT add_mailbox('other@example.com', 'another one', NULL, 'example.com/foo/')$$, '23505', NULL,
                 'a new mailbox in its very maildir is refused');
SELECT throws_ok($$SELECT add_mailbox('spy@example.com', 'another one', NULL, 'example.com/foo/.Archive/')$$, '23P01', NULL,
                 'a new maildir inside its maildir is refused');
SELECT throws_like($$SELECT add_mailbox('big@example.com', 'another one', NULL, 'example.com/')$$,
                   'maildir "example.com/" would contain the maildir "example.com/foo/" of the removed mailbox "foo@example.com", kept until 2%',
                   'a new maildir around it is refused, naming both and the date');
SELECT lives_ok($$SELECT add_mailbox('bar@example.com', 'another one')$$, 'a neighbour is still welcome');
SELECT throws_ok($$SELECT remove_mailbox('bar@example.com', -1)$$, '22023', NULL, 'keep_days must not be negative');
SELECT throws_ok($$SELECT remove_mailbox('bar@example.com', NULL)$$, '22023', NULL, 'nor NULL');

-- 4. restored whole
SELECT results_eq($$SELECT email, realname, quota_bytes, disabled_services FROM restore_mailbox('foo@example.com')$$,
                  $$VALUES ('foo@example.com', 'Foo Person', 5000000::bigint, ARRAY['pop3'])$$,
                  'restore_mailbox() brings it back');
RESET ROLE;
SELECT is((SELECT to_jsonb(u) - 'modified' FROM users u WHERE email = 'foo@example.com'), (SELECT box FROM before),
          'its users row is as it was, password hash included');
SELECT is((SELECT hash FROM app_passwords WHERE email = 'foo@example.com'), (SELECT app_hash FROM before),
          'its app password is back');
SELECT bag_eq($$SELECT alias, email FROM aliases$$,
              $$VALUES ('info@example.com', 'foo@example.com'), ('fwd@example.org', 'foo@example.com')$$,
              'the aliases that forwarded to it are back, in every domain');
SELECT is((SELECT subject FROM vacations WHERE email = 'foo@example.com'), 'Away', 'its vacation is back');
SELECT is((SELECT address FROM send_as WHERE login = 'foo@example.com'), 'boss@example.org', 'its send-as grant is back');
SELECT isnt_empty($$SELECT * FROM postfix_mailbox('foo', 'example.com')$$, 'Postfix finds it again');
SELECT is_empty($$SELECT * FROM removed_mailboxes$$, 'nothing is left in removed_mailboxes');
SELECT is(array(SELECT operation || ' ' || row_key FROM audit_log WHERE table_name = 'removed_mailboxes' ORDER BY id),
          ARRAY['INSERT foo@example.com', 'DELETE foo@example.com'], 'the removal and the restore are audited');
SET ROLE alice;
SELECT throws_ok($$SELECT restore_mailbox('foo@example.com')$$, 'P0002',
                 'no removed mailbox "foo@example.com" can be restored', 'only once');

-- 5. after the window
SELECT remove_mailbox('foo@example.com', 1);
SELECT remove_mailbox('bar@example.com', 1);
RESET ROLE;
UPDATE removed_mailboxes SET removed = now() - interval '2 days', purge_after = now() - interval '1 day';
INSERT INTO maildir_purge_queue (maildir, email) VALUES ('example.com/', 'old@example.com');
SET ROLE alice;
SELECT throws_ok($$SELECT restore_mailbox('foo@example.com')$$, '55000', NULL, 'a restore after the window is refused');
SELECT is((SELECT reason FROM queued_maildirs() WHERE maildir = 'example.com/'),
          'the removed mailbox "bar@example.com", restorable until ' || to_char((now() - interval '1 day') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') || ', keeps the maildir "example.com/bar/"',
          'a queued path around a removed mailbox''s maildir is in use: never purged under it');
SELECT ok(NOT claim_maildir('example.com/'), 'and cannot be claimed');
SELECT lives_ok($$SELECT add_mailbox('foo@example.com', 'a new one')$$, 'after the window its address may be used again');
SELECT is(ARRAY(SELECT email FROM removed_mailboxes_list()), ARRAY['bar@example.com'],
          'which retires the old one (the new mailbox takes its directory back, as after an immediate removal)');
SELECT results_eq($$SELECT email, maildir FROM expire_removed_mailboxes()$$, $$VALUES ('bar@example.com', 'example.com/bar/')$$,
                  'expire_removed_mailboxes() moves the rest');
SELECT results_eq($$SELECT maildir, email FROM queued_maildirs() ORDER BY maildir$$,
              $$VALUES ('example.com/', 'old@example.com'), ('example.com/bar/', 'bar@example.com')$$,
              'into the purge queue');
RESET ROLE;

-- 6. a reseller's cap counts a restored mailbox like a new one
CREATE ROLE t_rex NOLOGIN;
GRANT maildomainadmin TO t_rex;
SET ROLE mailadmin;
SELECT make_reseller('t_rex', 1, 1);
RESET ROLE;
SET SESSION AUTHORIZATION t_rex;
SELECT add_domain('rex.test');
SELECT * FROM add_mailbox('a@rex.test', 'pw pw pw a');
SELECT remove_mailbox('a@rex.test', 7);
SELECT lives_ok($$SELECT add_mailbox('b@rex.test', 'pw pw pw b')$$, 'a removed mailbox does not count: another fits');
SELECT throws_ok($$SELECT restore_mailbox('a@rex.test')$$, '23514', NULL, 'so the restore is over the cap, and refused');
SELECT throws_ok($$SELECT restore_mailbox('bar@example.com')$$, '42501', NULL, 'a scoped admin restores only in its domains');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;

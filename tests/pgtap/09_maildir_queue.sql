-- The maildir purge queue: every way a mailbox goes queues its maildir, a mailbox added
-- again takes it back, and only the functions touch the queue.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(9);
\ir _setup.sql

SELECT has_table('public', 'maildir_purge_queue', 'the queue exists');
SELECT trigger_is('public', 'users', 'queue_removed_maildirs', 'public', 'queue_removed_maildirs',
                  'removals queue their maildirs, whatever removed them');

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT * FROM add_mailbox('bar@example.com', 'secret two', NULL, 'archive/bar/');
SELECT remove_mailbox('foo@example.com');
SELECT results_eq('SELECT maildir, email, in_use FROM queued_maildirs()',
                  $$VALUES ('example.com/foo/', 'foo@example.com', false)$$, 'remove_mailbox queues the maildir');
SELECT * FROM add_mailbox('foo@example.com', 'secret three');
SELECT is_empty('SELECT * FROM queued_maildirs()', 'the same mailbox added again takes its maildir back');
SELECT remove_domain('example.com', true);
SELECT is(ARRAY(SELECT maildir FROM queued_maildirs() ORDER BY maildir), ARRAY['archive/bar/', 'example.com/foo/'],
          'a cascading remove_domain queues every maildir, custom paths included');
SELECT ok(claim_maildir('archive/bar/'), 'a path nobody uses may be claimed for deletion');
SELECT throws_ok($$SELECT claim_maildir('archive/bar/')$$, 'P0002',
                 'maildir "archive/bar/" is not queued for purging', 'and only once');
SELECT throws_ok($$DELETE FROM maildir_purge_queue$$, '42501', NULL, 'mailadmin changes the queue only through the functions');
RESET ROLE;
SELECT throws_ok($$INSERT INTO maildir_purge_queue (maildir, email) VALUES ('../etc/', 'x@example.com')$$, '23514', NULL,
                 'a path that could leave the base cannot even be queued');

SELECT * FROM finish();
ROLLBACK;

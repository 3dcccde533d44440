-- auth_cache_changes (migration 0205) records what makes Dovecot's cached answers stale,
-- and nothing else: a mailbox's password, state, services, maildir, quota, its arrival
-- and removal, its vacation reply set, moved or cleared (0211: the userdb answers whether
-- to read it); a domain's state, services and gid (every mailbox of it). Only mailauth
-- (`mailbook dovecot follow`) and mailadmin may read it, through
-- auth_cache_changed_users(), and prune it.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(38);
\ir _setup.sql

-- the mailboxes and domains one statement records (the file is one transaction, so
-- the table is emptied before each)
CREATE FUNCTION pg_temp.recorded(statement text) RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM public.auth_cache_changes;
    EXECUTE statement;
    RETURN ARRAY(SELECT DISTINCT coalesce(c.email, c.domain, '(all)') FROM public.auth_cache_changes c ORDER BY 1);
END
$$;

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_domain('relay.example', 'smtp:[mx.relay.example]');
SELECT * FROM add_mailbox('bar@example.com', 'secret two');
SELECT * FROM add_mailbox('one@example.org', 'secret one');
SELECT add_alias('team@example.com', 'bar@example.com');
RESET ROLE;

-- what Dovecot's queries read: recorded
SELECT is(pg_temp.recorded($$SELECT * FROM add_mailbox('foo@example.com', 'secret one')$$), ARRAY['foo@example.com'],
          'a new mailbox is recorded (a negative cache entry for it)');
SELECT is(pg_temp.recorded($$SELECT set_password('foo@example.com', 'a new secret')$$), ARRAY['foo@example.com'],
          'a password change records the mailbox');
INSERT INTO password_attempts (email, matched, txid) VALUES ('foo@example.com', true, '1') RETURNING ticket \gset
SELECT is(pg_temp.recorded(format($$SELECT public.change_password('foo@example.com', %L, 'another secret 12')$$, :'ticket')),
          ARRAY['foo@example.com'], 'and a user''s own password change (webmail)');
SELECT is(pg_temp.recorded($$SELECT set_mailbox_quota('foo@example.com', 1000000, 100)$$), ARRAY['foo@example.com'],
          'a quota change records the mailbox');
SELECT is(pg_temp.recorded($$SELECT set_mailbox_active('foo@example.com', false)$$), ARRAY['foo@example.com'],
          'a disabled mailbox is recorded');
SELECT is(pg_temp.recorded($$SELECT set_mailbox_service('foo@example.com', 'imap', false)$$), ARRAY['foo@example.com'],
          'a mailbox''s services are recorded');
SELECT is(pg_temp.recorded($$UPDATE users SET maildir = 'example.com/foo2/' WHERE email = 'foo@example.com'$$),
          ARRAY['foo@example.com'], 'a maildir change records the mailbox');
SELECT is(pg_temp.recorded($$UPDATE users SET email = 'baz@example.com' WHERE email = 'bar@example.com'$$),
          ARRAY['bar@example.com', 'baz@example.com'], 'a renamed mailbox records the old and the new address');
SELECT is(pg_temp.recorded($$UPDATE users SET realname = 'x',
                                 quota_bytes = CASE email WHEN 'baz@example.com' THEN 5000 ELSE quota_bytes END$$),
          ARRAY['baz@example.com'], 'a statement over every mailbox records only the rows whose Dovecot columns changed');
SELECT is(pg_temp.recorded($$SELECT set_domain_active('example.org', false)$$), ARRAY['example.org'],
          'a disabled domain is recorded as the domain (every mailbox of it)');
SELECT is(pg_temp.recorded($$SELECT set_domain_service('example.org', 'pop3', false)$$), ARRAY['example.org'],
          'a domain''s services are recorded');
SELECT is(pg_temp.recorded($$UPDATE transports SET gid = 5000 WHERE domain = 'example.org'$$), ARRAY['example.org'],
          'a domain''s gid is recorded');
SELECT is(pg_temp.recorded($$SELECT remove_mailbox('baz@example.com')$$), ARRAY['baz@example.com'],
          'a removed mailbox is recorded');
SELECT is(pg_temp.recorded($$SELECT set_vacation('foo@example.com', 'Away', 'away')$$), ARRAY['foo@example.com'],
          'a vacation reply set records the mailbox (its userdb answer now reads the script)');
SELECT is(pg_temp.recorded($$SELECT set_vacation('foo@example.com', 'Away', 'away', NULL, now() + interval '1 day')$$),
          ARRAY['foo@example.com'], 'and one whose end moved');
SELECT is(pg_temp.recorded($$UPDATE vacations SET subject = 'Still away', days = 3$$), '{}',
          'but not a new text or interval: the dict reads them at delivery');
SELECT is(pg_temp.recorded($$SELECT clear_vacation('foo@example.com')$$), ARRAY['foo@example.com'],
          'a cleared reply records the mailbox');

-- what they do not read: nothing recorded, nothing notified
SELECT is(pg_temp.recorded($$UPDATE users SET realname = 'Foo Bar', modified = now() WHERE email = 'foo@example.com'$$),
          '{}', 'a realname change records nothing');
SELECT is(pg_temp.recorded($$UPDATE users SET password = password, modified = now()$$), '{}',
          'nor a statement over every mailbox that changes no Dovecot column');
SELECT is(pg_temp.recorded($$SELECT set_domain_limits('example.com', 10, 10, NULL)$$), '{}',
          'nor a domain''s limits');
SELECT is(pg_temp.recorded($$UPDATE transports SET transport = 'smtp:[mx2.relay.example]' WHERE domain = 'relay.example'$$),
          '{}', 'nor a domain''s transport');
SELECT is(pg_temp.recorded($$SELECT add_alias_domain('example.net', 'example.com')$$), '{}',
          'nor a new (alias) domain: it has no mailbox');
SELECT is(pg_temp.recorded($$SELECT add_alias('sales@example.com', 'foo@example.com')$$), '{}',
          'nor an alias');
SELECT is(pg_temp.recorded($$SELECT allow_send_as('foo@example.com', 'boss@example.com')$$), '{}',
          'nor a send-as grant');

-- who may read it: mailauth and mailadmin, through the function
SET ROLE mailauth;
SELECT throws_ok($$SELECT * FROM public.auth_cache_changes$$, '42501', NULL, 'mailauth may not read the table itself');
SELECT lives_ok($$SELECT * FROM public.auth_cache_changed_users(pg_current_snapshot())$$,
                'mailauth may ask which users changed');
SELECT lives_ok($$SELECT public.prune_auth_cache_changes('1 day')$$, 'mailauth may prune (the follower does)');
SET ROLE mailreader;
SELECT throws_ok($$SELECT * FROM public.auth_cache_changed_users(pg_current_snapshot())$$, '42501', NULL,
                 'mailreader (Postfix) may not learn of password or quota changes');
SET ROLE mailquota;
SELECT throws_ok($$SELECT * FROM public.auth_cache_changed_users(pg_current_snapshot())$$, '42501', NULL,
                 'nor may mailquota');
SET ROLE mailwebmail;
SELECT throws_ok($$SELECT public.prune_auth_cache_changes('1 day')$$, '42501', NULL, 'nor prune: mailwebmail');
RESET ROLE;

-- what it answers: played with transaction ids of our choosing (the whole file is one
-- transaction, which no snapshot of its own can tell apart)
DELETE FROM public.auth_cache_changes;
INSERT INTO public.auth_cache_changes (xid, domain, email) VALUES
    ('5', 'example.com', 'foo@example.com'), ('6', 'example.org', NULL), ('3', 'example.com', 'old@example.com');
SET ROLE alice;
SELECT set_domain_active('example.org', true);
SELECT * FROM add_mailbox('two@example.org', 'secret two');
RESET ROLE;
DELETE FROM public.auth_cache_changes WHERE xid > '6';
SET ROLE mailauth;
SELECT is(ARRAY(SELECT email FROM public.auth_cache_changed_users('4:4:') ORDER BY 1),
              ARRAY['foo@example.com', 'one@example.org', 'two@example.org'],
              'the users changed after a snapshot: addresses, and every mailbox of a domain');
SELECT is(ARRAY(SELECT email FROM public.auth_cache_changed_users('4:6:5') ORDER BY 1),
              ARRAY['foo@example.com', 'one@example.org', 'two@example.org'],
              'and a transaction running at that snapshot, committed since');
SELECT is(ARRAY(SELECT email FROM public.auth_cache_changed_users('7:7:')), '{}', 'none after a later snapshot');
RESET ROLE;
UPDATE public.auth_cache_changes_horizon SET pruned_xid = '4';
SET ROLE mailauth;
SELECT throws_ok($$SELECT * FROM public.auth_cache_changed_users('4:4:')$$, '55000', NULL,
                 'a snapshot older than the pruned horizon is refused: flush every user');
SELECT throws_ok($$SELECT public.prune_auth_cache_changes('5 minutes')$$, '22023', NULL,
                 'a retention shorter than an hour is refused');
RESET ROLE;
UPDATE public.auth_cache_changes SET changed_at = now() - interval '2 days' WHERE xid = '6';
SET ROLE mailauth;
SELECT is(public.prune_auth_cache_changes('1 day'), 1::bigint, 'prune deletes the older records');
RESET ROLE;
SELECT is((SELECT pruned_xid FROM public.auth_cache_changes_horizon), '6'::xid8, 'and moves the horizon past them');
SELECT is(pg_temp.recorded($$TRUNCATE users, aliases, send_as, vacations, quota_usage, maildir_purge_queue, password_attempts CASCADE$$),
          ARRAY['(all)'], 'a TRUNCATE records every user');

SELECT * FROM finish();
ROLLBACK;

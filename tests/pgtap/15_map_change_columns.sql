-- map_changes records only what the maps answer (0202): an UPDATE records an address or
-- domain only when a column the maps read changed, so mailreader (compiled_map_changes(),
-- compiled_map_lag()) does not learn of password, realname, quota, service or limit
-- changes; a change of what the maps read is still recorded.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(21);
\ir _setup.sql

-- the addresses and domains one statement records in map_changes (the file is one
-- transaction, so the table is emptied before each)
CREATE FUNCTION pg_temp.recorded(statement text) RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM public.map_changes;
    EXECUTE statement;
    RETURN ARRAY(SELECT DISTINCT coalesce(c.address, c.domain) FROM public.map_changes c ORDER BY 1);
END
$$;

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('relay.example', 'smtp:[mx.relay.example]');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT * FROM add_mailbox('bar@example.com', 'secret two');
SELECT add_alias('team@example.com', 'foo@example.com');
SELECT allow_send_as('foo@example.com', 'boss@example.com');
RESET ROLE;

-- what the maps do not read: nothing recorded
SELECT is(pg_temp.recorded($$SELECT set_password('foo@example.com', 'a new secret')$$), '{}',
          'a password change records no map change');
-- a user's own change, with a check committed earlier (played by another transaction's id)
INSERT INTO password_attempts (email, matched, txid) VALUES ('foo@example.com', true, '1') RETURNING ticket \gset
SELECT is(pg_temp.recorded(format($$SELECT public.change_password('foo@example.com', %L, 'another secret 12')$$, :'ticket')), '{}',
          'nor a user''s own password change (webmail)');
SELECT is(pg_temp.recorded($$UPDATE users SET realname = 'Foo Bar', modified = now() WHERE email = 'foo@example.com'$$), '{}',
          'nor a realname change');
SELECT is(pg_temp.recorded($$SELECT set_mailbox_quota('foo@example.com', 1000000, 100)$$), '{}',
          'nor a quota change');
SELECT is(pg_temp.recorded($$SELECT set_mailbox_service('foo@example.com', 'imap', false)$$), '{}',
          'nor a mailbox''s services');
SELECT is(pg_temp.recorded($$UPDATE users SET password = password, modified = now()$$), '{}',
          'nor a statement over every mailbox that changes no map column');
SELECT is(pg_temp.recorded($$SELECT set_domain_service('example.com', 'pop3', false)$$), '{}',
          'nor a domain''s services');
SELECT is(pg_temp.recorded($$SELECT set_domain_limits('example.com', 10, 10, NULL)$$), '{}',
          'nor a domain''s limits');
SELECT is(pg_temp.recorded($$UPDATE transports SET gid = 5000 WHERE domain = 'example.com'$$), '{}',
          'nor a domain''s gid');
SELECT is(pg_temp.recorded($$UPDATE aliases SET created = now() - interval '1 day'$$), '{}',
          'nor an alias row''s creation time');
SELECT is(pg_temp.recorded($$UPDATE send_as SET created = now() - interval '1 day'$$), '{}',
          'nor a grant''s creation time');

-- what the maps read: recorded as before
SELECT is(pg_temp.recorded($$SELECT set_mailbox_active('foo@example.com', false)$$),
          ARRAY['boss@example.com', 'foo@example.com', 'team@example.com'],
          'disabling a mailbox records it, the aliases reaching it and its grants');
SELECT is(pg_temp.recorded($$UPDATE users SET maildir = 'example.com/foo2/' WHERE email = 'foo@example.com'$$),
          ARRAY['boss@example.com', 'foo@example.com', 'team@example.com'],
          'a maildir change records the mailbox');
SELECT is(pg_temp.recorded($$UPDATE users SET password = password,
                                 maildir = CASE email WHEN 'bar@example.com' THEN 'example.com/bar2/' ELSE maildir END$$),
          ARRAY['bar@example.com'],
          'a statement over every mailbox records only the rows whose map columns changed');
SELECT is(pg_temp.recorded($$UPDATE users SET email = 'baz@example.com' WHERE email = 'bar@example.com'$$),
          ARRAY['bar@example.com', 'baz@example.com'],
          'a renamed mailbox records the old and the new address');
SELECT is(pg_temp.recorded($$UPDATE aliases SET active = false WHERE alias = 'team@example.com'$$),
          ARRAY['team@example.com'], 'an alias turned off is recorded');
SELECT is(pg_temp.recorded($$UPDATE send_as SET address = 'chief@example.com'$$),
          ARRAY['boss@example.com', 'chief@example.com'], 'a grant moved to another address records both');
SELECT is(pg_temp.recorded($$SELECT set_domain_active('example.com', false)$$), ARRAY['chief@example.com', 'example.com'],
          'a domain turned off records the domain and the grants its mailboxes hold');
SELECT is(pg_temp.recorded($$UPDATE transports SET transport = 'smtp:[mx2.relay.example]' WHERE domain = 'relay.example'$$),
          ARRAY['relay.example'], 'a transport change records the domain');
SELECT is(pg_temp.recorded($$SELECT remove_mailbox('baz@example.com')$$), ARRAY['baz@example.com'],
          'a removed mailbox is recorded (the follower must delete its keys)');

RESET ROLE;
SELECT throws_ok($$CREATE TRIGGER t AFTER UPDATE OF password ON public.users REFERENCING OLD TABLE AS o
                   FOR EACH STATEMENT EXECUTE FUNCTION public.users_map_changes()$$, '0A000', NULL,
                 'PostgreSQL refuses UPDATE OF columns with transition tables: the functions compare rows instead');

SELECT * FROM finish();
ROLLBACK;

-- Relay and backup-MX domains: what relay-domains.cf and domains.cf answer for them, and
-- the rule that a relay domain holds no mailboxes, for the API and the owner alike.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(8);
\ir _setup.sql

SELECT function_returns('public', 'is_relay_transport', ARRAY['text'], 'boolean', 'is_relay_transport(text) -> boolean');
SELECT ok(is_relay_transport('smtp:[mx.example.net]') AND is_relay_transport('relay:[10.0.0.1]:2525')
          AND NOT is_relay_transport('virtual:') AND NOT is_relay_transport('lmtp:unix:private/dovecot-lmtp'),
          'smtp: and relay: pass mail on; virtual: and lmtp: deliver here');

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('backup.example', 'smtp:[mx1.backup.example]');
SELECT add_alias('postmaster@backup.example', 'someone@elsewhere.example');
RESET ROLE;
SET ROLE mailreader;  -- as Postfix asks (postfix-maps/relay-domains.cf and domains.cf)
SELECT is((SELECT postfix_relay_domain('backup.example')), 'backup.example',
          'relay-domains.cf answers a relay domain');
SELECT is((SELECT postfix_relay_domain('example.com')), NULL, 'and not a mailbox domain');
RESET ROLE;

SET ROLE alice;
SELECT throws_ok($$SELECT add_mailbox('x@backup.example', 'secret one')$$, '23514', NULL,
                 'add_mailbox refuses a mailbox in a relay domain');
SELECT lives_ok($$SELECT add_mailbox('foo@example.com', 'secret two')$$, 'a mailbox domain takes one');
RESET ROLE;
SELECT throws_like($$UPDATE transports SET transport = 'relay:[mx2.example.net]' WHERE domain = 'example.com'$$,
                   '%"example.com" is relayed to "relay:[mx2.example.net]", so it holds no mailboxes%',
                   'a domain with mailboxes cannot become a relay domain');
SELECT throws_ok($$INSERT INTO users (email, password, maildir)
                   VALUES ('y@backup.example', '{BLF-CRYPT}' || crypto.crypt('x', crypto.gen_salt('bf', 4)), 'backup.example/y/')$$,
                 '23514', NULL, 'nor does the owner''s DML put one in');

SELECT * FROM finish();
ROLLBACK;

-- Usage in SQL and vacation replies (0060, 0061): the role that writes usage may write
-- the two counters and nothing else, and only within their bounds (0203); the vacation API's refusals; the generated script
-- quotes user text so that no text changes it; the view Dovecot reads answers only
-- while a reply is due.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(43);
\ir _setup.sql

SELECT has_role('mailquota', 'the usage role exists');
SELECT ok((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'mailquota'), 'mailquota logs in (Dovecot''s dict)');
SELECT fk_ok('public', 'quota_usage', 'email', 'public', 'users', 'email');
SELECT fk_ok('public', 'vacations', 'email', 'public', 'users', 'email');
SELECT trigger_is('public', 'vacations', 'audit_insert', 'public', 'audit_statement', 'vacations are audited');

-- mailquota: exactly Dovecot's upsert
SELECT ok(has_column_privilege('mailquota', 'public.quota_usage', 'bytes', 'UPDATE')
          AND has_column_privilege('mailquota', 'public.quota_usage', 'messages', 'INSERT'),
          'mailquota may write the counters');
SELECT ok(NOT has_column_privilege('mailquota', 'public.quota_usage', 'email', 'UPDATE'),
          'but not move a row to another mailbox');
SELECT ok(NOT has_column_privilege('mailquota', 'public.quota_usage', 'bytes', 'SELECT'),
          'nor read anyone''s usage');
SELECT ok(NOT has_table_privilege('mailquota', 'public.quota_usage', 'DELETE'), 'nor delete usage rows');
SELECT column_privs_are('public', 'quota_usage', col, 'mailquota', privs, format('mailquota on quota_usage.%s: %s', col, privs))
  FROM (VALUES ('email', ARRAY['INSERT', 'SELECT']), ('bytes', ARRAY['INSERT', 'UPDATE']),
               ('messages', ARRAY['INSERT', 'UPDATE']), ('measured', '{}'::text[])) AS x(col, privs);
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
              AND c.relname NOT IN ('quota_usage', 'last_logins')  -- last_logins: 23_last_login.sql
              AND has_any_column_privilege('mailquota', c.oid, 'SELECT')),
          0, 'mailquota reads no other table or view');
SELECT ok(NOT has_column_privilege('mailreader', 'public.vacations', 'body', 'SELECT')
          AND NOT has_table_privilege('mailreader', 'public.sieve_scripts', 'SELECT'),
          'Postfix''s role reads no vacation');
SELECT ok(has_table_privilege('mailauth', 'public.sieve_scripts', 'SELECT')
          AND NOT has_table_privilege('mailauth', 'public.vacations', 'SELECT'),
          'Dovecot''s role reads the generated scripts, not the table');
SELECT ok(NOT has_table_privilege('mailadmin', 'public.vacations', 'INSERT')
          AND has_function_privilege('mailadmin', 'public.set_vacation(text, text, text, timestamptz, timestamptz, integer)', 'EXECUTE'),
          'mailadmin writes vacations only through set_vacation()');

SET ROLE alice;  -- a DBA account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_alias_domain('example.net', 'example.com');
SELECT * FROM add_mailbox('foo@example.com', 'secret one');
SELECT add_alias('team@example.com', 'foo@example.com');
SELECT add_alias('@example.com', 'foo@example.com');

RESET ROLE;

-- the counters' bounds (0203): a stolen mailquota password no longer sets -1 or 2^63 - 1
SET ROLE mailquota;
SELECT throws_ok($$INSERT INTO quota_usage (bytes, messages, email) VALUES (-1, 0, 'foo@example.com')$$, '23514',
    'new row for relation "quota_usage" violates check constraint "quota_usage_bytes_range"', 'negative bytes are refused');
SELECT throws_ok($$INSERT INTO quota_usage (bytes, messages, email) VALUES (9223372036854775807, 0, 'foo@example.com')$$,
    '23514', NULL, '2^63 - 1 bytes are refused');
SELECT lives_ok($$INSERT INTO quota_usage (bytes, messages, email) VALUES (9007199254740992, 2147483647, 'foo@example.com')
                  ON CONFLICT (email) DO UPDATE SET bytes = 9007199254740992, messages = 2147483647$$,
    'the bounds themselves are taken (2^53 bytes, 2^31 - 1 messages), as Dovecot''s quota_clone writes them');
SELECT throws_ok($$INSERT INTO quota_usage (bytes, messages, email) VALUES (9007199254740993, 1, 'foo@example.com')
                   ON CONFLICT (email) DO UPDATE SET bytes = 9007199254740993, messages = 1$$,
    '23514', NULL, 'one byte more is refused in Dovecot''s upsert');
SELECT throws_ok($$UPDATE quota_usage SET messages = -5 WHERE email = 'foo@example.com'$$, '23514',
    'new row for relation "quota_usage" violates check constraint "quota_usage_messages_range"', 'negative messages are refused');
SELECT throws_ok($$UPDATE quota_usage SET messages = 2147483648 WHERE email = 'foo@example.com'$$, '23514', NULL,
    '2^31 messages are refused');
RESET ROLE;
SELECT is((SELECT (bytes, messages)::text FROM quota_usage WHERE email = 'foo@example.com'), '(9007199254740992,2147483647)',
    'the refused writes left the row as it was');
SET ROLE alice;

SELECT throws_ok($$SELECT set_vacation('nobody@example.com', 'Away', 'away')$$, 'P0002',
    'mailbox "nobody@example.com" does not exist', 'an unknown mailbox is named');
SELECT throws_ok($$SELECT set_vacation('foo@example.com', E'Away\r\nBcc: x@evil.example', 'away')$$, '22023',
    'a vacation subject must be one line without control characters, not U+000D', 'a subject is one line');
SELECT throws_ok($$SELECT set_vacation('foo@example.com', 'Away', E'bell\x07')$$, '22023',
    'a vacation body must not hold control characters but tab and line breaks, not U+0007', 'no control characters');
SELECT throws_ok($$SELECT set_vacation('foo@example.com', 'Away', '   ')$$, '22023',
    'a vacation body must not be empty', 'an empty body is refused');
SELECT throws_ok($$SELECT set_vacation('foo@example.com', 'Away', 'away', NULL, NULL, 0)$$, '22023',
    'a vacation reply repeats every 1 to 365 days, not 0', 'days out of range');
SELECT throws_ok($$SELECT set_vacation('foo@example.com', 'Away', 'away', now(), now() - interval '1 hour')$$,
    '22023', NULL, 'an end before the start is refused');
SELECT throws_ok($$SELECT clear_vacation('nobody@example.com')$$, 'P0002', NULL, 'clearing an unknown mailbox');
SELECT is((SELECT count(*)::int FROM vacations), 0, 'no refusal wrote anything');

SELECT lives_ok($$SELECT set_vacation('Foo@Example.COM', 'Away "now"', E'Back \\ soon";\ndiscard;', NULL, NULL, 3)$$,
    'a hostile body is stored');
RESET ROLE;
SET ROLE mailauth;
SELECT is((SELECT script FROM sieve_scripts WHERE username = 'foo@example.com' AND name = 'mailbook-vacation'),
    E'require ["vacation"];\r\nvacation :days 3 :subject "Away \\"now\\"" :addresses ["foo@example.net", "team@example.com", "team@example.net"]\r\n  "Back \\\\ soon\\";\r\ndiscard;";\r\n',
    'the script quotes " and \, makes line breaks CRLF, and lists the aliases and alias domains (never the catch-all)');
SELECT is((SELECT id FROM sieve_scripts WHERE username = 'foo@example.com'),
    (SELECT md5(script) FROM sieve_scripts WHERE username = 'foo@example.com'), 'the id follows the text');
-- Pigeonhole 2.4.1 defers mail whose script is missing (migration 0204): at delivery, every
-- mailbox has exactly one script, the vacation while due, else one that does nothing
SELECT is((SELECT count(*)::int FROM sieve_delivery_scripts), (SELECT count(*)::int FROM users),
    'sieve_delivery_scripts: one script per mailbox');
SELECT is((SELECT script FROM sieve_delivery_scripts WHERE username = 'foo@example.com' AND name = 'mailbook-vacation'),
    (SELECT script FROM sieve_scripts WHERE username = 'foo@example.com'), 'the vacation script while it is due');
RESET ROLE;
SET ROLE alice;
SELECT lives_ok($$SELECT set_vacation('foo@example.com', 'Later', 'later', now() + interval '1 day')$$, 'a reply set for tomorrow');
RESET ROLE;
SET ROLE mailauth;
SELECT is((SELECT count(*)::int FROM sieve_scripts), 0, 'is not due yet: Dovecot finds no script');
SELECT is((SELECT id || ' ' || script FROM sieve_delivery_scripts WHERE username = 'foo@example.com'),
    E'none # no vacation reply is due\r\n', 'and Dovecot 2.4 a comment: Sieve keeps the message, nothing more');
RESET ROLE;
SET ROLE alice;
SELECT ok(clear_vacation('foo@example.com'), 'clear_vacation says a reply was set');
SELECT ok(NOT clear_vacation('foo@example.com'), 'and then that none is');
SELECT set_vacation('foo@example.com', 'Away', 'away');
SELECT remove_mailbox('foo@example.com');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM vacations), 0, 'a removed mailbox takes its vacation with it');

SELECT * FROM finish();
ROLLBACK;

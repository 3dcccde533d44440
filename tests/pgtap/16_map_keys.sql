-- Map keys: every key the compiled maps write is an address that address_error() passed
-- (or a domain, or "@domain"), and postmap reads a source line starting with "#" as a
-- comment. So no address may start with "#" (0201), through the API (22023, the value
-- named) or past it (the CHECKs, 23514); "#" elsewhere stays valid; the rule stays plain
-- IMMUTABLE SQL that PostgreSQL inlines into the CHECKs.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(16);
\ir _setup.sql

SET ROLE alice;
SELECT add_domain('example.com');
SELECT add_mailbox('foo@example.com', 'secret');

-- the rule itself
SELECT is(address_error('#hash@example.com'),
          'local part of "#hash@example.com" starts with "#": a Postfix table source (postmap, the compiled maps)'
          ' reads that line as a comment and drops the key',
          'an address starting with "#" is refused, named');
SELECT is(address_error('a#b@example.com'), NULL, '"#" inside a local part is still valid (postmap keeps it)');
SELECT is(address_error('!x@example.com'), NULL, 'the other atext characters may still come first');
SELECT is(alias_error('#off@example.com'), address_error('#off@example.com'), 'an alias address follows the same rule');

-- every key the compiled maps write, through the API: 22023, the value named
SELECT throws_ok($$SELECT add_mailbox('#hash@example.com', 'secret')$$, '22023',
                 address_error('#hash@example.com'), 'a mailbox starting with "#"');
SELECT throws_ok($$SELECT add_alias('#off@example.com', 'foo@example.com')$$, '22023',
                 address_error('#off@example.com'), 'an alias starting with "#"');
SELECT throws_ok($$SELECT add_alias('team@example.com', '#dest@example.com')$$, '22023',
                 address_error('#dest@example.com'), 'an alias destination starting with "#"');
SELECT throws_ok($$SELECT allow_send_as('foo@example.com', '#boss@example.com')$$, '22023',
                 address_error('#boss@example.com'), 'a send-as address starting with "#"');
SELECT is((SELECT count(*) FROM public.users WHERE email LIKE '#%')
          + (SELECT count(*) FROM public.aliases WHERE alias LIKE '#%' OR email LIKE '#%')
          + (SELECT count(*) FROM public.send_as WHERE address LIKE '#%'), 0::bigint, 'nothing was written');

-- past the API, the table owner meets the CHECKs
RESET ROLE;
SELECT throws_ok($$INSERT INTO public.users (email, password, maildir)
                   VALUES ('#hash@example.com', '{CRAM-MD5}' || repeat('0', 64), 'example.com/hash/')$$,
                 '23514', NULL, 'a direct INSERT of a "#" mailbox violates users_email_valid');
SELECT throws_ok($$UPDATE public.users SET email = '#foo@example.com' WHERE email = 'foo@example.com'$$,
                 '23514', NULL, 'renaming a mailbox to a "#" address violates users_email_valid');
SELECT throws_ok($$INSERT INTO public.aliases (alias, email) VALUES ('#off@example.com', 'foo@example.com')$$,
                 '23514', NULL, 'a direct INSERT of a "#" alias violates aliases_alias_valid');
SELECT throws_ok($$INSERT INTO public.send_as (login, address) VALUES ('foo@example.com', '#x@example.com')$$,
                 '23514', NULL, 'a direct INSERT of a "#" send-as address violates send_as_address_valid');

-- and the compiled maps have no key postmap would read as a comment
SELECT is_empty($$SELECT m, r.key FROM unnest(ARRAY['domains', 'mailboxes', 'virtual', 'transport', 'relay-domains',
                  'sender-login', 'refused-recipients']) m, public.compiled_map_rows(m) r WHERE left(r.key, 1) = '#'$$,
                'no compiled key starts with "#"');

-- still inlinable into the CHECKs
SELECT function_lang_is('public', 'address_error', ARRAY['text'], 'sql', 'address_error is plain SQL');
SELECT volatility_is('public', 'address_error', ARRAY['text'], 'immutable', 'address_error is IMMUTABLE');

SELECT * FROM finish();
ROLLBACK;

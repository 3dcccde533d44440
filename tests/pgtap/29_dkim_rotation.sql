-- DKIM key rotation (issue 34, migration 0217, sql/api/65_dkim.sql): rotate_dkim_key()
-- adds the next key, advance_dkim_key() activates it only when the published record
-- carries its p= value and keeps the old key retiring (published) until retire_after,
-- retire_dkim_keys_due() retires it then; the signer's view names an alias domain's
-- own key, else its target's. Through real unbound, OpenDKIM and Postfix: tests/test_dkim.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(27);
\ir _setup.sql

CREATE TEMP TABLE t_pair AS SELECT E'-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n'::text AS private_key,
                                   repeat('A', 392) AS old_public, repeat('B', 392) AS new_public;
GRANT SELECT ON t_pair TO PUBLIC;

-- 1. who may
SELECT is(array(SELECT r || ' ' || f FROM unnest(ARRAY['maildkim', 'maildomainadmin', 'mailreader', 'mailauth',
                                                       'mailquota', 'mailwebmail', 'public']) r,
                                          unnest(ARRAY['rotate_dkim_key(text, text)', 'dkim_rotations(text)',
                                                       'advance_dkim_key(text, text, text[], interval)',
                                                       'retire_dkim_keys_due(text)']) f
                 WHERE has_function_privilege(r, 'public.' || f, 'EXECUTE')),
          '{}'::text[], 'only mailadmin rotates: a customer''s admin may not stage a private key');

-- 2. a rotation, as mailadmin
SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
SELECT add_alias_domain('example.net', 'example.com');
SELECT add_alias_domain('example.info', 'example.com');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, old_public FROM t_pair;
SELECT is(rotate_dkim_key('example.com', 'mb202612'), repeat('A', 392), 'a domain''s first key by rotation');
SELECT results_eq($$SELECT domain, selector, name, public_key FROM dkim_rotations()$$,
                  $$VALUES ('example.com', 'mb202612', 'mb202612._domainkey.example.com.', repeat('A', 392))$$,
                  'dkim_rotations() lists it, with the record''s name');
SELECT throws_ok($$SELECT * FROM dkim_rotations('exmaple.com')$$, '23503', 'domain "exmaple.com" is not hosted here',
                 'dkim_rotations() of a domain not hosted names it');
SELECT results_eq($$SELECT * FROM advance_dkim_key('example.com', 'mb202612', ARRAY['v=DKIM1; k=rsa; p=' || repeat('A', 392)])$$,
                  $$VALUES ('activated', NULL::text, NULL::timestamptz)$$, 'published: active, there was no previous key');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, new_public FROM t_pair;
SELECT is(rotate_dkim_key('Example.COM', 'mb202701'), repeat('B', 392), 'the next key');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, new_public FROM t_pair;
SELECT throws_ok($$SELECT rotate_dkim_key('example.com', 'mb202702')$$, '55000',
                 'domain "example.com" has a rotation under way: its next DKIM key "mb202701" is pending',
                 'one rotation at a time');
RESET ROLE;
DELETE FROM dkim_key_staging;
SET ROLE mailadmin;
SELECT results_eq($$SELECT outcome FROM advance_dkim_key('example.com', 'mb202701', '{}')$$,
                  $$VALUES ('missing')$$, 'no record: missing');
SELECT results_eq($$SELECT outcome FROM advance_dkim_key('example.com', 'mb202701', NULL)$$,
                  $$VALUES ('missing')$$, 'NULL: missing too');
SELECT results_eq($$SELECT outcome FROM advance_dkim_key('example.com', 'mb202701',
                                                         ARRAY['v=DKIM1; k=rsa; p=' || repeat('A', 392), 'v=DKIM1; p='])$$,
                  $$VALUES ('different')$$, 'another p= (or a revoked key): different');
SELECT results_eq($$SELECT outcome FROM advance_dkim_key('example.com', 'mb202701', ARRAY['v=DKIM1; k=rsa; p=' || repeat('B', 391)])$$,
                  $$VALUES ('different')$$, 'a prefix of the key is no match');
SELECT results_eq($$SELECT selector, state FROM dkim_keys_list('example.com')$$,
                  $$VALUES ('mb202612', 'active'), ('mb202701', 'pending')$$, 'until then nothing changes');
SELECT throws_ok($$SELECT * FROM advance_dkim_key('example.com', 'mb202701', '{}', interval '-1 day')$$, '22023',
                 'the retirement delay "-1 days" is negative', 'a negative delay is refused');
SELECT throws_ok($$SELECT * FROM advance_dkim_key('example.com', 'mb202701', '{}', NULL)$$, '22004', NULL,
                 'so is a NULL one');
SELECT throws_ok($$SELECT * FROM advance_dkim_key('example.com', 'mb202612', '{}')$$, '55000', NULL,
                 'the active key is no rotation''s pending key');
SELECT throws_ok($$SELECT * FROM advance_dkim_key('example.com', 'nosuch', '{}')$$, 'P0002',
                 'domain "example.com" has no DKIM key with selector "nosuch"', 'an unknown key');
-- the record split into strings and folded, as DNS and zone files may
SELECT results_eq($$SELECT outcome, previous, retire_after - now() FROM advance_dkim_key('example.com', 'mb202701',
                        ARRAY['v=DKIM1; k=rsa; p=' || repeat('B', 200) || E'\t ' || repeat('B', 192) || ' '], interval '3 days')$$,
                  $$VALUES ('activated', 'mb202612', interval '3 days')$$, 'published: active; the old key retires in 3 days');
SELECT results_eq($$SELECT selector, state, retired IS NOT NULL FROM dkim_keys_list('example.com')$$,
                  $$VALUES ('mb202612', 'retiring', true), ('mb202701', 'active', false)$$,
                  'the old key is retiring: it signs no more');
SELECT results_eq($$SELECT selector, state FROM dkim_dns_records('example.com')$$,
                  $$VALUES ('mb202612', 'retiring'), ('mb202701', 'active')$$,
                  'its record is still one to publish');
SELECT is_empty($$SELECT * FROM retire_dkim_keys_due()$$, 'before the delay nothing retires');
SELECT throws_ok($$SELECT activate_dkim_key('example.com', 'mb202612')$$, '55000',
                 'DKIM key "mb202612" of domain "example.com" is retiring', 'a retiring key is not activated again');
RESET ROLE;
UPDATE dkim_keys SET retire_after = now() - interval '1 second' WHERE selector = 'mb202612';
SET ROLE mailadmin;
SELECT results_eq($$SELECT domain, selector FROM retire_dkim_keys_due('example.org')$$,
                  $$SELECT NULL::text, NULL::text WHERE false$$, 'another domain''s due keys are left');
SELECT results_eq($$SELECT domain, selector FROM retire_dkim_keys_due()$$,
                  $$VALUES ('example.com', 'mb202612')$$, 'after the delay it retires');
SELECT results_eq($$SELECT selector FROM dkim_dns_records('example.com')$$, $$VALUES ('mb202701')$$,
                  'and its record may go');

-- 3. what the signer reads: by sender_domain, an alias domain's own key or its target's
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, old_public FROM t_pair;
SELECT add_dkim_key('example.net', 'mb202612', 'rsa-sha256');
SELECT activate_dkim_key('example.net', 'mb202612');
SET ROLE maildkim;
SELECT results_eq($$SELECT sender_domain, domain, selector FROM dkim_signing ORDER BY 1$$,
                  $$VALUES ('example.com', 'example.com', 'mb202701'), ('example.info', 'example.com', 'mb202701'),
                           ('example.net', 'example.net', 'mb202612')$$,
                  'each domain its own active key; an alias domain without one its target''s; a domain without, none');
RESET ROLE;
SELECT is((SELECT count(*) FROM audit_log WHERE table_name = 'dkim_keys' AND row_key = 'example.com -> mb202612'
                                             AND operation = 'UPDATE'), 5::bigint,
          'each step of the old key is audited (rotation mark, active, retiring, this test''s clock, retired)');
SELECT col_not_null('public', 'dkim_keys', 'activate_when_published', 'a key is a rotation''s or not');
SELECT * FROM finish();
ROLLBACK;

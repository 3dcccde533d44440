-- DKIM keys (issue 34, migration 0209, sql/api/65_dkim.sql): only the signer's role
-- maildkim reads private keys, and only the active ones through dkim_signing; mailadmin
-- and every other role read public parts at most. A key's life pending -> active ->
-- retired decides what the signer sees. Through real OpenDKIM and Postfix: tests/test_dkim.py.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(31);
\ir _setup.sql

-- a key pair of the right shapes (the signing itself is tested with real keys)
CREATE TEMP TABLE t_pair AS SELECT E'-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n'::text AS private_key,
                                   repeat('A', 392) AS public_key,
                                   repeat('A', 43) || '=' AS ed25519_public_key;
GRANT SELECT ON t_pair TO PUBLIC;

-- 1. the role
SELECT has_role('maildkim', 'role maildkim exists');
SELECT ok(rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolbypassrls AND NOT rolcreatedb,
          'maildkim logs in and holds no special attribute')
  FROM pg_roles WHERE rolname = 'maildkim';
SELECT is(array(SELECT c.relname || ' ' || p FROM pg_class c,
                       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p
                 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm')
                   AND has_table_privilege('maildkim', c.oid, p)),
          ARRAY['dkim_signing SELECT'], 'maildkim reads dkim_signing and nothing else');
SELECT is(array(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
                   AND has_function_privilege('maildkim', p.oid, 'EXECUTE')),
          '{}'::text[], 'maildkim may call no API function');

-- 2. nobody else reads a private key
SELECT is(array(SELECT r || ' ' || t FROM unnest(ARRAY['mailadmin', 'maildomainadmin', 'mailreader', 'mailauth',
                                                       'mailquota', 'mailwebmail', 'public']) r,
                                          unnest(ARRAY['dkim_keys', 'dkim_signing', 'dkim_key_staging']) t
                 WHERE has_any_column_privilege(r, ('public.' || t)::regclass, 'SELECT')),
          '{}'::text[], 'no other role reads dkim_keys, dkim_signing or the staging table, not one column');
SELECT is(array(SELECT r FROM unnest(ARRAY['maildkim', 'maildomainadmin', 'mailreader', 'mailauth', 'mailquota',
                                           'mailwebmail']) r
                 WHERE has_function_privilege(r, 'public.add_dkim_key(text, text, text)', 'EXECUTE')
                    OR has_function_privilege(r, 'public.dkim_keys_list(text)', 'EXECUTE')),
          '{}'::text[], 'only mailadmin adds and lists keys');
SELECT table_owner_is('public', 'dkim_keys', 'mailowner', 'dkim_keys belongs to mailowner');
SELECT is((SELECT attstattarget FROM pg_attribute WHERE attrelid = 'public.dkim_keys'::regclass AND attname = 'private_key')::integer,
          0, 'ANALYZE copies no private key into pg_statistic');

-- 3. a key's life, as mailadmin
SET ROLE mailadmin;
SELECT add_domain('example.com');
SELECT add_domain('example.org');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, public_key FROM t_pair;
SELECT is(add_dkim_key('Example.COM', 'mb202612', 'rsa-sha256'), repeat('A', 392),
          'mailadmin adds a key from the staged pair and gets its public key back');
SELECT throws_ok($$SELECT * FROM dkim_key_staging$$, '42501', NULL, 'mailadmin reads no staged pair');
SELECT throws_ok($$SELECT private_key FROM dkim_keys$$, '42501', NULL, 'mailadmin reads no private key');
SELECT throws_ok($$SELECT * FROM dkim_signing$$, '42501', NULL, 'nor the signer''s view');
SELECT results_eq($$SELECT domain, selector, algorithm, state FROM dkim_keys_list()$$,
                  $$VALUES ('example.com', 'mb202612', 'rsa-sha256', 'pending')$$,
                  'dkim_keys_list() shows it pending, the domain lower-cased');
RESET ROLE;
SELECT is((SELECT count(*) FROM dkim_key_staging), 0::bigint, 'the staged pair is gone');
SELECT is((SELECT count(*) FROM dkim_signing), 0::bigint, 'a pending key does not sign');
SET ROLE mailadmin;
SELECT activate_dkim_key('example.com', 'mb202612');
SELECT activate_dkim_key('example.com', 'mb202612');  -- again: nothing changes
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, public_key FROM t_pair;
SELECT add_dkim_key('example.com', 'mb202701', 'rsa-sha256');
SET ROLE maildkim;
SELECT results_eq($$SELECT domain, selector FROM dkim_signing$$, $$VALUES ('example.com', 'mb202612')$$,
                  'maildkim reads the active key only, not the next pending one');
SET ROLE mailadmin;
SELECT activate_dkim_key('example.com', 'mb202701');
SELECT results_eq($$SELECT selector, state, activated IS NOT NULL, retired IS NOT NULL FROM dkim_keys_list('example.com')$$,
                  $$VALUES ('mb202612', 'retired', true, true), ('mb202701', 'active', true, false)$$,
                  'activating the next key retires the previous one in the same transaction');
SELECT retire_dkim_key('example.com', 'mb202701');
SET ROLE maildkim;
SELECT is((SELECT count(*) FROM dkim_signing), 0::bigint, 'a retired key signs no more');

-- 4. refusals
SET ROLE mailadmin;
SELECT throws_ok($$SELECT add_dkim_key('example.org', 'mb202612', 'ed25519-sha256')$$, '22023',
                 '0 DKIM key pairs staged in this transaction, not one', 'no key without a staged pair');
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, public_key FROM t_pair;
SELECT throws_ok($$SELECT add_dkim_key('example.com', 'mb202612', 'rsa-sha256')$$, '23505', NULL,
                 'a selector is used once per domain');
SELECT throws_ok($$SELECT add_dkim_key('nothere.test', 'mb202612', 'rsa-sha256')$$, '23503',
                 'domain "nothere.test" is not hosted here', 'nor a domain not hosted');
SELECT throws_ok($$SELECT add_dkim_key('example.org', 'Bad_Sel', 'rsa-sha256')$$, '22023',
                 'selector "Bad_Sel" is not one DNS label (a-z, 0-9, -; at most 63)', 'a selector is one lower-case DNS label');
SELECT throws_ok($$SELECT add_dkim_key('example.org', 'mb202612', 'rsa-sha1')$$, '22023',
                 'DKIM algorithm "rsa-sha1" is not rsa-sha256 or ed25519-sha256', 'rsa-sha1 is refused');
RESET ROLE;
DELETE FROM dkim_key_staging;  -- the pair staged above (the failed calls kept it), before a new one
SET ROLE mailadmin;
INSERT INTO dkim_key_staging (private_key, public_key) SELECT private_key, ed25519_public_key FROM t_pair;
SELECT throws_ok($$SELECT add_dkim_key('example.org', 'mb202612', 'rsa-sha256')$$, '22023',
                 'the staged public key (44 characters) is no rsa-sha256 key', 'an Ed25519 key is no RSA key');
-- the failed call's subtransaction kept the staged pair: now as what it is
SELECT is(add_dkim_key('example.org', 'mb202612e', 'ed25519-sha256'), repeat('A', 43) || '=', 'an Ed25519 key is stored');
SELECT throws_ok($$SELECT activate_dkim_key('example.org', 'mb202612e')$$, '0A000', NULL,
                 'but not activated: OpenDKIM 2.11 signs with one algorithm for every key'); 
SELECT throws_ok($$SELECT activate_dkim_key('example.com', 'nosuch')$$, 'P0002',
                 'domain "example.com" has no DKIM key with selector "nosuch"', 'activating an unknown key');
SELECT throws_ok($$SELECT activate_dkim_key('example.com', 'mb202612')$$, '55000', NULL, 'a retired key is not activated again');
SELECT throws_ok($$SELECT retire_dkim_key('example.org', 'mb202612')$$, 'P0002', NULL, 'retiring an unknown key');
SET ROLE mailreader;
SELECT throws_ok($$SELECT * FROM dkim_keys_list()$$, '42501', NULL, 'Postfix''s role lists no key');
RESET ROLE;

-- 5. the audit log names keys, never their contents
SELECT is(array(SELECT DISTINCT row_key FROM audit_log WHERE table_name = 'dkim_keys' ORDER BY 1),
          ARRAY['example.com -> mb202612', 'example.com -> mb202701', 'example.org -> mb202612e'], 'each key change is audited by domain and selector');
SELECT * FROM finish();
ROLLBACK;

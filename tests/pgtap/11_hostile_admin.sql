-- A hostile member of mailadmin (a help-desk account) provisions and nothing more: no
-- maildir inside or around another mailbox's, no hash that takes any password or burns
-- a core per login, no rows slipped into another admin's import, no plaintext in the
-- statistics, no pgcrypto, no password oracle (issue 15). The rules live in the tables,
-- so the owner's own DML obeys them too.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(30);
\ir _setup.sql

SET ROLE alice;  -- a help-desk account, member of mailadmin
SELECT add_domain('example.com');
SELECT add_domain('other.org');
SELECT * FROM add_mailbox('boss@other.org', 'boss secret 1');
SELECT * FROM add_mailbox('foo@example.com', 'foo secret 1');

-- 1. maildirs apart
SELECT throws_ok($$SELECT * FROM add_mailbox('spy@example.com', 'spy secret 1', NULL, 'other.org/boss/.Archive/')$$,
                 '23P01', 'maildir "other.org/boss/.Archive/" of "spy@example.com" lies inside the maildir "other.org/boss/" of "boss@other.org"',
                 'a maildir inside another mailbox''s is refused, naming both');
SELECT throws_ok($$SELECT * FROM add_mailbox('evil@example.com', 'evil secret 1', NULL, 'example.com/')$$,
                 '23P01', 'maildir "example.com/" of "evil@example.com" would contain the maildir "example.com/foo/" of "foo@example.com"',
                 'a maildir around another mailbox''s is refused, naming both');
SELECT throws_ok($$SELECT * FROM add_mailbox('deep@example.com', 'deep secret 1', NULL, 'other.org/boss/a/b/c/')$$,
                 '23P01', NULL, 'however deep inside');
SELECT lives_ok($$SELECT * FROM add_mailbox('bossy@example.com', 'bossy secret 1', NULL, 'other.org/bossy/')$$,
                'a sibling whose name merely starts the same is its own directory');
SELECT lives_ok($$SELECT * FROM add_mailbox('flat@example.com', 'flat secret 1', NULL, 'flat/')$$,
                'a one-segment maildir beside the domains is fine');
SELECT is((SELECT count(*) FROM mailboxes WHERE email IN ('spy@example.com', 'evil@example.com', 'deep@example.com')),
          0::bigint, 'and the refused mailboxes were not added');
RESET ROLE;
SELECT throws_ok($$INSERT INTO users (email, password, maildir) VALUES ('own@example.com', '{BLF-CRYPT}$2a$05$' || repeat('a', 53), 'other.org/boss/own/')$$,
                 '23P01', NULL, 'the owner''s own INSERT obeys the rule');
SELECT throws_ok($$UPDATE users SET maildir = 'example.com/foo/sub/' WHERE email = 'flat@example.com'$$,
                 '23P01', NULL, 'and so does moving a maildir with UPDATE');
SELECT throws_ok($$INSERT INTO users (email, password, maildir)
                   VALUES ('p1@example.com', '{BLF-CRYPT}$2a$05$' || repeat('a', 53), 'pair/'),
                          ('p2@example.com', '{BLF-CRYPT}$2a$05$' || repeat('a', 53), 'pair/inner/')$$,
                 '23P01', NULL, 'two rows of one statement may not nest either');
SELECT lives_ok($$UPDATE users SET realname = 'Boss' WHERE email = 'boss@other.org'$$,
                'an UPDATE that keeps the maildir is not in the way');
SELECT is_empty('SELECT * FROM nested_maildirs', 'no pair nests (what doctor reads)');
SET ROLE alice;
SELECT remove_mailbox('foo@example.com');
SELECT * FROM add_mailbox('late@example.com', 'late secret 1', NULL, 'example.com/foo/late/');
SELECT results_eq($$SELECT in_use, reason FROM queued_maildirs() WHERE maildir = 'example.com/foo/'$$,
                  $$VALUES (true, 'the maildir "example.com/foo/late/" of "late@example.com" lies inside it')$$,
                  'a queued maildir that a later mailbox lies inside is in use, and says why');
SELECT is(claim_maildir('example.com/foo/'), false, 'so the purge may not claim it');

-- 2. hashes with bounded work factors
SELECT throws_ok($$SELECT * FROM add_mailbox_hashed('zero@example.com', '{PBKDF2}$1$ab$0$' || repeat('0', 40))$$,
                 '22023', 'password hash {PBKDF2} has 0 rounds: accepted are 1000 to 1000000 (fewer let guesses through cheaply; more cost more than a second of CPU a login)',
                 'PBKDF2 with zero rounds (any password would do) is refused, naming scheme and bound');
SELECT throws_ok($$SELECT * FROM add_mailbox_hashed('slow@example.com', '{PBKDF2}$1$ab$20000000$' || repeat('0', 40))$$,
                 '22023', NULL, 'PBKDF2 with 20,000,000 rounds (12.6 s a login) is refused');
SELECT throws_ok($$SELECT * FROM add_mailbox_hashed('slow@example.com', '$2a$31$' || repeat('a', 53))$$,
                 '22023', 'password hash {BLF-CRYPT} has cost 31: accepted are 4 to 14 (above 14 one login costs more than a second of CPU)',
                 'bcrypt cost 31 is refused');
SELECT throws_ok($$SELECT * FROM add_mailbox_hashed('slow@example.com', '{SHA512-CRYPT}$6$rounds=999999999$salt$' || repeat('a', 86))$$,
                 '22023', NULL, 'SHA512-CRYPT with rounds=999999999 is refused');
SELECT throws_ok($$SELECT * FROM add_mailbox_hashed('slow@example.com', '{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$c2FsdA$aGFzaA')$$,
                 '22023', NULL, 'Argon2 asking 4 GiB a login is refused');
SELECT lives_ok($$SELECT * FROM add_mailbox_hashed('tutorial@example.com', '$2a$05$' || repeat('a', 53))$$,
                'the tutorial''s bcrypt cost 5 still loads');
SELECT lives_ok($$SELECT * FROM add_mailbox_hashed('dovecot@example.com', '{PBKDF2}$1$54K5X/K6uzKCPF2Y$5000$' || repeat('0', 40))$$,
                'PBKDF2 as `doveadm pw -s PBKDF2` prints it (salt of ./0-9A-Za-z, 5000 rounds) loads');
RESET ROLE;
SELECT throws_ok($$INSERT INTO users (email, password, maildir) VALUES ('own@example.com', '$2a$31$' || repeat('a', 53), 'own/')$$,
                 '23514', NULL, 'the CHECK holds the bound for the owner''s DML');
SELECT throws_ok($$UPDATE settings SET bcrypt_cost = 15$$, '23514', NULL,
                 'nor can add_mailbox be told to hash above the bound');

-- 3 and 4. import staging: own batch only, never sampled
SET ROLE alice;
SELECT throws_ok($$INSERT INTO import_staging (batch, kind, address, password)
                   VALUES ((pg_current_xact_id()::text::bigint + 1)::text::xid8, 'mailbox', 'backdoor@example.com', 'x')$$,
                 '42501', NULL, 'a staged row cannot name a batch: not another transaction''s, not its own');
INSERT INTO import_staging (kind, address, password)
SELECT 'mailbox', 'n' || i || '@example.com', 'plaintext-' || i FROM generate_series(1, 200) i;
SELECT is((SELECT count(*) FROM import_batch(true)), 0::bigint, 'a dry run of the staged rows finds nothing wrong');
RESET ROLE;
SELECT ok(EXISTS (SELECT FROM pg_statistic WHERE starelid = 'import_staging'::regclass),
          'import_batch() did analyze the staging table');
SELECT is_empty($$SELECT a.attname FROM pg_statistic s JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum
                  WHERE s.starelid = 'import_staging'::regclass AND a.attname IN ('password', 'password_hash')$$,
                'but pg_statistic holds nothing of the password columns');

-- 8. pgcrypto and the password oracle
SELECT is(ARRAY(SELECT r FROM unnest(ARRAY['mailadmin', 'mailreader', 'mailauth', 'public']) r
                 WHERE has_schema_privilege(r, 'crypto', 'USAGE')), '{}'::text[],
          'no role but mailowner may use schema crypto');
SET ROLE mailreader;
SELECT throws_ok($$SELECT crypto.crypt('x', crypto.gen_salt('bf', 31))$$, '42501', NULL,
                 'Postfix''s role cannot call pgcrypto');
SELECT throws_ok($$SELECT public.crypt('x', 'y')$$, '42883', NULL, 'and there is none left in public');
RESET ROLE;
SET ROLE alice;
SELECT throws_ok($$SELECT verify_password('boss@other.org', 'boss secret 1')$$, '42501', NULL,
                 'a help-desk account cannot test guesses against a password');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;

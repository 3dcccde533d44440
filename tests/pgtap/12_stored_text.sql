-- Stored text harmful later: realnames refuse Unicode format characters (bidi controls,
-- zero-width), and the CSV cell helpers neutralise spreadsheet formulas reversibly.
SET client_min_messages = warning;
SET search_path = public, tap;
BEGIN;
SELECT plan(12);
\ir _setup.sql

SET ROLE alice;
SELECT add_domain('example.com');
SELECT throws_ok($$SELECT * FROM add_mailbox('foo@example.com', 'foo secret 1', E'Evil\u202Egpj.exe')$$, '22023',
                 'realname "Evil?gpj.exe" contains the invisible format character U+202E (bidi controls, zero-width and other format characters make a name read differently from what it is)',
                 'a bidi override in a realname is refused, named by its code point');
SELECT throws_ok($$SELECT * FROM add_mailbox('foo@example.com', 'foo secret 1', E'a\u200Bb')$$, '22023', NULL,
                 'so is a zero-width space');
SELECT lives_ok($$SELECT * FROM add_mailbox('foo@example.com', 'foo secret 1', 'Zoë O''Neil-Müller')$$,
                'letters of any script, apostrophes and hyphens are fine');
RESET ROLE;
SELECT throws_ok($$UPDATE users SET realname = E'x\u2066y' WHERE email = 'foo@example.com'$$, '23514', NULL,
                 'the CHECK holds the rule for the owner''s DML too');

SELECT is(csv_cell_out('=cmd'), '''=cmd', 'a formula gets an apostrophe on the way out');
SELECT is(csv_cell_out('''=x'), '''''=x', 'so does a value that already looks neutralised');
SELECT is(csv_cell_out('''t Hooft'), '''t Hooft', 'a name that merely starts with an apostrophe does not');
SELECT is(csv_cell_out('Plain'), 'Plain', 'nor does plain text');
SELECT is(csv_cell_in('''@SUM(1)'), '@SUM(1)', 'the import takes the apostrophe off again');
SELECT is(csv_cell_in('''t Hooft'), '''t Hooft', 'and leaves a real apostrophe alone');
SELECT is_empty($$SELECT v FROM unnest(ARRAY['=a', '+b', '-c', '@d', E'\te', E'\rf', '''=g', '''''+h', '''i', 'j', '']) v
                  WHERE csv_cell_in(csv_cell_out(v)) IS DISTINCT FROM v$$,
                'export then import gives every value back');
SELECT is_empty($$SELECT v FROM unnest(ARRAY['=a', '+b', '-c', '@d', E'\te', E'\rf', '''=g']) v
                  WHERE left(csv_cell_out(v), 1) IN ('=', '+', '-', '@', E'\t', E'\r')$$,
                'no exported cell starts with a formula character');

SELECT * FROM finish();
ROLLBACK;

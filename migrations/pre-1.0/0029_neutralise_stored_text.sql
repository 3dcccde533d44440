-- Text that harms whoever opens it later. Two holes closed:
-- * Format characters in realnames: bidi overrides (U+202E makes "gpj.exe" read as
--   "exe.jpg"), zero-width characters, soft hyphens: a name that reads differently from
--   what it is. realname_error() now refuses every character of Unicode's general
--   category Cf (the list is Python 3.11's unicodedata, Unicode 14), naming its code
--   point. Rows stored before are not rewritten; `mailbook doctor` lists them.
-- * Spreadsheet formulas in exports: a cell starting with =, +, -, @, a tab or a carriage
--   return is a formula to Excel and LibreOffice (CSV injection). `mailbook export`
--   writes such a value of address, destination, realname or maildir with one more
--   leading apostrophe (csv_cell_out), and `mailbook import` takes one off again
--   (csv_cell_in, in import_rows), so export -> import -> export is byte for byte the
--   same. Values of the form '...'=x (apostrophes, then a formula character) are the only
--   ones changed: a name such as 't Hooft passes untouched both ways.
-- depends: 0028_private_import_staging

-- code_point(ch): 'U+202E', as Unicode names a character
CREATE FUNCTION public.code_point(ch text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT 'U+' || upper(lpad(to_hex(ascii(ch)), greatest(4, length(to_hex(ascii(ch)))), '0'))
$f$;

CREATE OR REPLACE FUNCTION public.realname_error(realname text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    -- the common case in one pattern: no control and no format character, short enough
    WHEN realname !~ '[[:cntrl:]\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]' AND length(realname) <= 255 THEN NULL
    WHEN realname ~ '[[:cntrl:]]' OR length(realname) > 255
        THEN 'realname ' || public.quoted(realname) || ' must be printable and at most 255 characters'
    WHEN realname ~ '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]'
        THEN 'realname ' || public.quoted(regexp_replace(realname, '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]', '?', 'g'))
             || ' contains the invisible format character '
             || public.code_point(substring(realname FROM '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]'))
             || ' (bidi controls, zero-width and other format characters make a name read differently'
             || ' from what it is)'
END
$f$;

-- csv_cell_out(value) / csv_cell_in(value): one more leading apostrophe on the way out
-- for a value a spreadsheet would take for a formula, one fewer on the way in. Only a
-- value starting with an apostrophe or a formula character pays for the pattern.
CREATE FUNCTION public.csv_cell_out(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE WHEN left(value, 1) IN ('=', '+', '-', '@', E'\t', E'\r', '''') AND value ~ '^''*[=+@\t\r-]'
            THEN '''' || value ELSE value END
$f$;

CREATE FUNCTION public.csv_cell_in(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE WHEN left(value, 1) = '''' AND value ~ '^''+[=+@\t\r-]' THEN substr(value, 2) ELSE value END
$f$;

-- import_rows as 0024 left it, each free-text cell read through csv_cell_in()
CREATE OR REPLACE VIEW public.import_rows AS
SELECT s.batch, s.seq,
       CASE WHEN s.kind IN ('domain', 'mailbox', 'alias', 'sendas') THEN s.kind ELSE lower(trim(s.kind)) END AS kind,
       lower(public.csv_cell_in(s.address)) AS address,
       lower(nullif(public.csv_cell_in(s.destination), '')) AS destination,
       nullif(s.password, '') AS password,
       public.normalised_password_hash(nullif(s.password_hash, '')) AS password_hash,
       nullif(public.csv_cell_in(s.realname), '') AS realname,
       coalesce(nullif(public.csv_cell_in(s.maildir), ''),
                CASE WHEN s.kind = 'mailbox' OR lower(trim(s.kind)) = 'mailbox'
                     THEN lower(public.default_maildir(public.csv_cell_in(s.address))) END) AS maildir,
       nullif(trim(s.quota_bytes), '') AS quota_bytes,
       coalesce(nullif(trim(s.transport), ''), 'virtual:') AS transport,
       nullif(trim(s.gid), '') AS gid,
       nullif(lower(trim(s.active)), '') AS active,
       nullif(trim(s.quota_messages), '') AS quota_messages,
       coalesce(string_to_array(nullif(lower(trim(s.services_off)), ''), ' '), '{}') AS services_off,
       nullif(trim(s.max_mailboxes), '') AS max_mailboxes,
       nullif(trim(s.max_aliases), '') AS max_aliases,
       nullif(trim(s.max_quota_bytes), '') AS max_quota_bytes
  FROM public.import_staging s;

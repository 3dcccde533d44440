-- Bulk import (`mailbook import`, and `export` for the way back): the CSV file is
-- streamed into import_staging by COPY ... FORMAT csv (PostgreSQL parses it), then
-- import_batch() validates every row at once and writes all or nothing. A row's kind is
-- domain, mailbox, alias, sendas or vacation; its columns carry what the API's
-- arguments do, so an export and re-import loses nothing (caps, services turned off,
-- vacation replies).
-- * UNLOGGED: plaintext passwords in a batch never reach the WAL; the rows are deleted
--   in the transaction that loaded them.
-- * batch is the importing transaction and only ever its DEFAULT: mailadmin may insert
--   the file's columns and no other (sql/api/90_privileges.sql), so nobody can slip rows
--   into another admin's import. seq keeps the file's order, 1,000 numbers a call (COPY
--   of 1,000,000 rows: 1.0 s against 1.2 s); a row's line number is counted only when a
--   problem is reported (import_lines). No primary key: nothing looks a row up by key.
-- * password and password_hash have statistics target 0: import_batch() runs ANALYZE
--   while a batch is staged, and ANALYZE would copy sampled passwords into pg_statistic,
--   which is WAL-logged.
-- * Spreadsheet formulas: `mailbook export` writes a free-text value that a spreadsheet
--   would take for a formula (=, +, -, @, tab, CR first) with one more leading
--   apostrophe (csv_cell_out), and import_rows takes one off again (csv_cell_in), so
--   export -> import -> export is byte for byte the same.
-- depends: 0108_baseline_maildir_queue

CREATE UNLOGGED TABLE public.import_staging (
    kind            text,
    address         text,
    destination     text,
    password        text,
    password_hash   text,
    realname        text,
    maildir         text,
    quota_bytes     text,
    transport       text,
    gid             text,
    active          text,
    batch           xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    seq             bigint GENERATED ALWAYS AS IDENTITY (CACHE 1000),
    quota_messages  text,
    services_off    text,
    max_mailboxes   text,
    max_aliases     text,
    max_quota_bytes text,
    subject         text,
    body            text,
    starts          text,
    ends            text,
    days            text
);
ALTER TABLE public.import_staging ALTER COLUMN password SET STATISTICS 0;
ALTER TABLE public.import_staging ALTER COLUMN password_hash SET STATISTICS 0;
COMMENT ON TABLE public.import_staging IS
'Rows of a CSV import (`mailbook import`), staged as text by COPY and checked together by import_batch() before anything is written; emptied when the import ends.';
COMMENT ON COLUMN public.import_staging.batch IS 'The importing transaction.';
COMMENT ON COLUMN public.import_staging.seq IS 'Order in the file (the line number is worked out from it).';
COMMENT ON COLUMN public.import_staging.kind IS 'domain, mailbox, alias, sendas or vacation.';
COMMENT ON COLUMN public.import_staging.address IS 'The domain, mailbox, alias or grant''s address.';
COMMENT ON COLUMN public.import_staging.destination IS 'An alias''s destination, a grant''s login, or an alias domain''s target.';
COMMENT ON COLUMN public.import_staging.password IS 'A mailbox''s plaintext password, hashed on import and never kept.';
COMMENT ON COLUMN public.import_staging.password_hash IS 'A mailbox''s hash from another server ({SCHEME}... or bare crypt).';
COMMENT ON COLUMN public.import_staging.realname IS 'A mailbox''s real name.';
COMMENT ON COLUMN public.import_staging.maildir IS 'A mailbox''s maildir (default domain/local/).';
COMMENT ON COLUMN public.import_staging.quota_bytes IS 'A mailbox''s quota in bytes.';
COMMENT ON COLUMN public.import_staging.transport IS 'A domain''s transport (default virtual:).';
COMMENT ON COLUMN public.import_staging.gid IS 'A domain''s group id.';
COMMENT ON COLUMN public.import_staging.active IS 'true or false (default true).';
COMMENT ON COLUMN public.import_staging.quota_messages IS 'A mailbox''s message quota.';
COMMENT ON COLUMN public.import_staging.services_off IS 'Services turned off, space-separated.';
COMMENT ON COLUMN public.import_staging.max_mailboxes IS 'A domain''s mailbox cap.';
COMMENT ON COLUMN public.import_staging.max_aliases IS 'A domain''s alias cap.';
COMMENT ON COLUMN public.import_staging.max_quota_bytes IS 'A domain''s cap on the sum of quotas.';
COMMENT ON COLUMN public.import_staging.subject IS 'A vacation reply''s subject.';
COMMENT ON COLUMN public.import_staging.body IS 'A vacation reply''s body.';
COMMENT ON COLUMN public.import_staging.starts IS 'A vacation''s first moment (ISO 8601).';
COMMENT ON COLUMN public.import_staging.ends IS 'A vacation''s last moment (ISO 8601).';
COMMENT ON COLUMN public.import_staging.days IS 'Days between two replies to the same sender.';

-- csv_cell_out(value) / csv_cell_in(value): one more leading apostrophe on the way out
-- for a value a spreadsheet would take for a formula, one fewer on the way in. Only a
-- value starting with an apostrophe or a formula character pays for the pattern.
CREATE FUNCTION public.csv_cell_out(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE WHEN left(value, 1) IN ('=', '+', '-', '@', E'\t', E'\r', '''') AND value ~ '^''*[=+@\t\r-]'
            THEN '''' || value ELSE value END
$f$;
COMMENT ON FUNCTION public.csv_cell_out(text) IS 'A value as an export cell: one starting with a spreadsheet formula character gets a leading quote.';

CREATE FUNCTION public.csv_cell_in(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE WHEN left(value, 1) = '''' AND value ~ '^''+[=+@\t\r-]' THEN substr(value, 2) ELSE value END
$f$;
COMMENT ON FUNCTION public.csv_cell_in(text) IS 'The inverse of csv_cell_out() for an imported cell.';

-- vacation_time(value) -> timestamptz: a vacation's start or end as a file gives it
-- (ISO 8601; without a zone, the session's), NULL for NULL. Raises 22007 for text that
-- is no time and 22008 for infinity (a reply that never ends has no `ends`).
CREATE FUNCTION public.vacation_time(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := value::timestamptz;
BEGIN
    IF NOT isfinite(t) THEN
        RAISE EXCEPTION 'a vacation time must be a date and time, not %', public.quoted(value) USING ERRCODE = '22008';
    END IF;
    RETURN t;
END
$$;
COMMENT ON FUNCTION public.vacation_time(text) IS 'An imported vacation time (ISO 8601) as timestamptz.';

-- vacation_time_error(value, what) -> NULL when vacation_time() takes the value, else why not
CREATE FUNCTION public.vacation_time_error(value text, what text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM public.vacation_time(value);
    RETURN NULL;
EXCEPTION WHEN data_exception THEN
    RETURN format('%s must be a date and time such as 2026-12-24T09:00:00Z, not %s', what, public.quoted(value));
END
$$;
COMMENT ON FUNCTION public.vacation_time_error(text, text) IS 'Why an imported vacation time is invalid, or NULL.';

-- import_rows: a batch with the API's normalisation (lower-cased addresses, empty fields
-- as NULL, hashes in Dovecot's form, the default maildir, cells through csv_cell_in()).
-- import_batch() reads a row's kind about ten times: one already written as one of the
-- five words is taken as it is (lower(trim()) on every read cost 1.5 s of a
-- 1,000,000-row import). The default maildir is lower-cased once, after
-- default_maildir() has put the address's parts in place.
CREATE VIEW public.import_rows AS
SELECT s.batch, s.seq,
       CASE WHEN s.kind IN ('domain', 'mailbox', 'alias', 'sendas', 'vacation') THEN s.kind ELSE lower(trim(s.kind)) END AS kind,
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
       nullif(trim(s.max_quota_bytes), '') AS max_quota_bytes,
       nullif(public.csv_cell_in(s.subject), '') AS subject,
       nullif(public.csv_cell_in(s.body), '') AS body,
       nullif(trim(s.starts), '') AS starts,
       nullif(trim(s.ends), '') AS ends,
       nullif(trim(s.days), '') AS days
  FROM public.import_staging s;
COMMENT ON VIEW public.import_rows IS 'Internal: import_staging''s rows normalised (lower case, defaults) for import_batch().';

-- import_lines: each staged row's line in its file, the header being line 1: the line a
-- record ends on, as Python's csv module counts (a quoted field may hold newlines)
CREATE VIEW public.import_lines AS
SELECT s.batch, s.seq,
       (1 + sum(1 + length(x.fields) - length(replace(x.fields, E'\n', '')))
                OVER (PARTITION BY s.batch ORDER BY s.seq ROWS UNBOUNDED PRECEDING))::integer AS line
  FROM public.import_staging s,
       LATERAL (SELECT concat(s.kind, s.address, s.destination, s.password, s.password_hash, s.realname,
                              s.maildir, s.quota_bytes, s.transport, s.gid, s.active, s.quota_messages,
                              s.services_off, s.max_mailboxes, s.max_aliases, s.max_quota_bytes,
                              s.subject, s.body, s.starts, s.ends, s.days) AS fields) x;
COMMENT ON VIEW public.import_lines IS 'Internal: the file line of each staged row, for error messages.';

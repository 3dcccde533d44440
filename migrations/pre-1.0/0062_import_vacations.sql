-- `mailbook import` and `export` carry vacation replies (issue 18): a row of kind
-- `vacation` holds a mailbox's reply in five new columns (subject, body, starts, ends,
-- days), the same as set_vacation()'s arguments. Without them an export and re-import
-- would quietly stop every out-of-office reply. Times travel as text and are read with
-- vacation_time(); the export writes them in UTC (…Z), so they come back exactly.
-- depends: 0061_create_vacations

ALTER TABLE public.import_staging
    ADD COLUMN subject text,
    ADD COLUMN body    text,
    ADD COLUMN starts  text,
    ADD COLUMN ends    text,
    ADD COLUMN days    text;

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

-- import_rows as 0029 left it, with the vacation columns last; `vacation` takes the
-- kind's fast path (0024) like the other four words
CREATE OR REPLACE VIEW public.import_rows AS
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

-- line numbers count the newlines inside every field: a body has many
CREATE OR REPLACE VIEW public.import_lines AS
SELECT s.batch, s.seq,
       (1 + sum(1 + length(x.fields) - length(replace(x.fields, E'\n', '')))
                OVER (PARTITION BY s.batch ORDER BY s.seq ROWS UNBOUNDED PRECEDING))::integer AS line
  FROM public.import_staging s,
       LATERAL (SELECT concat(s.kind, s.address, s.destination, s.password, s.password_hash, s.realname,
                              s.maildir, s.quota_bytes, s.transport, s.gid, s.active, s.quota_messages,
                              s.services_off, s.max_mailboxes, s.max_aliases, s.max_quota_bytes,
                              s.subject, s.body, s.starts, s.ends, s.days) AS fields) x;

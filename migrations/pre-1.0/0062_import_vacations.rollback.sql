-- Undo 0062: the import views as 0029 and 0023 left them, the staging table without the
-- vacation columns (it is empty between imports), no vacation time helpers.
DROP VIEW public.import_rows;
DROP VIEW public.import_lines;
DELETE FROM public.import_staging;
ALTER TABLE public.import_staging
    DROP COLUMN subject, DROP COLUMN body, DROP COLUMN starts, DROP COLUMN ends, DROP COLUMN days;

CREATE VIEW public.import_rows AS
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


CREATE VIEW public.import_lines AS
SELECT s.batch, s.seq,
       (1 + sum(1 + length(x.fields) - length(replace(x.fields, E'\n', '')))
                OVER (PARTITION BY s.batch ORDER BY s.seq ROWS UNBOUNDED PRECEDING))::integer AS line
  FROM public.import_staging s,
       LATERAL (SELECT concat(s.kind, s.address, s.destination, s.password, s.password_hash, s.realname,
                              s.maildir, s.quota_bytes, s.transport, s.gid, s.active, s.quota_messages,
                              s.services_off, s.max_mailboxes, s.max_aliases, s.max_quota_bytes) AS fields) x;

DROP FUNCTION public.vacation_time_error(text, text);
DROP FUNCTION public.vacation_time(text);

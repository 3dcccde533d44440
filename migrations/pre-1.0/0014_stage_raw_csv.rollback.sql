-- Undo 0014_stage_raw_csv: staged rows keyed by (batch uuid, line) again. Staged rows
-- live only inside one import's transaction, so there is nothing to keep.
DROP VIEW public.import_lines;
DROP VIEW public.import_rows;
DELETE FROM public.import_staging;
ALTER TABLE public.import_staging DROP COLUMN seq;
ALTER TABLE public.import_staging DROP COLUMN batch;
ALTER TABLE public.import_staging
    ADD COLUMN batch uuid NOT NULL,
    ADD COLUMN line integer NOT NULL,
    ADD PRIMARY KEY (batch, line);

CREATE VIEW public.import_rows AS
SELECT s.batch, s.line,
       lower(trim(s.kind)) AS kind,
       lower(s.address) AS address,
       lower(nullif(s.destination, '')) AS destination,
       nullif(s.password, '') AS password,
       public.normalised_password_hash(nullif(s.password_hash, '')) AS password_hash,
       nullif(s.realname, '') AS realname,
       coalesce(nullif(s.maildir, ''), CASE WHEN lower(trim(s.kind)) = 'mailbox'
                                             THEN public.default_maildir(lower(s.address)) END) AS maildir,
       nullif(trim(s.quota_bytes), '') AS quota_bytes,
       coalesce(nullif(trim(s.transport), ''), 'virtual:') AS transport,
       nullif(trim(s.gid), '') AS gid,
       nullif(lower(trim(s.active)), '') AS active
  FROM public.import_staging s;

-- Bulk import streams the CSV file itself into import_staging (COPY ... FORMAT csv):
-- PostgreSQL parses it, where parsing it in Python and sending row by row took as long
-- as the whole floor the benchmark compares an import with. So the rows no longer
-- carry a batch id and line number from the client:
-- * batch is the importing transaction (pg_current_xact_id()); import_batch() runs in
--   the same transaction and deletes its rows there;
-- * seq keeps the file's order; a row's line number is counted only when a problem
--   has to be reported (import_lines), from seq and the newlines inside quoted fields.
-- No primary key: nothing looks a staged row up by key, and the index cost a tenth of
-- an import.
-- depends: 0013_hosted_domains_per_statement

DROP VIEW public.import_rows;
ALTER TABLE public.import_staging DROP CONSTRAINT import_staging_pkey;
ALTER TABLE public.import_staging DROP COLUMN batch;
ALTER TABLE public.import_staging DROP COLUMN line;
ALTER TABLE public.import_staging
    ADD COLUMN batch xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;

-- import_rows: a batch with the API's normalisation (lower-cased addresses, empty
-- fields as NULL, hashes in Dovecot's form, the default maildir).
CREATE VIEW public.import_rows AS
SELECT s.batch, s.seq,
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

-- import_lines: each staged row's line in its file, the header being line 1: the line
-- a record ends on, as Python's csv module counts (a quoted field may hold newlines).
CREATE VIEW public.import_lines AS
SELECT s.batch, s.seq,
       (1 + sum(1 + length(x.fields) - length(replace(x.fields, E'\n', '')))
                OVER (PARTITION BY s.batch ORDER BY s.seq ROWS UNBOUNDED PRECEDING))::integer AS line
  FROM public.import_staging s,
       LATERAL (SELECT concat(s.kind, s.address, s.destination, s.password, s.password_hash, s.realname,
                              s.maildir, s.quota_bytes, s.transport, s.gid, s.active) AS fields) x;

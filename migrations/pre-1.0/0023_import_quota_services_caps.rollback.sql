-- Undo 0023: the import views and staging table as 0014 left them.
DROP VIEW public.import_rows;
DROP VIEW public.import_lines;
ALTER TABLE public.import_staging
    DROP COLUMN quota_messages, DROP COLUMN services_off, DROP COLUMN max_mailboxes,
    DROP COLUMN max_aliases, DROP COLUMN max_quota_bytes;

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

CREATE VIEW public.import_lines AS
SELECT s.batch, s.seq,
       (1 + sum(1 + length(x.fields) - length(replace(x.fields, E'\n', '')))
                OVER (PARTITION BY s.batch ORDER BY s.seq ROWS UNBOUNDED PRECEDING))::integer AS line
  FROM public.import_staging s,
       LATERAL (SELECT concat(s.kind, s.address, s.destination, s.password, s.password_hash, s.realname,
                              s.maildir, s.quota_bytes, s.transport, s.gid, s.active) AS fields) x;

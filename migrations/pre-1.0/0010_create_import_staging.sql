-- Bulk import: `mailbook import` COPYs a whole CSV file into import_staging under one
-- batch id, then import_batch() validates every row at once and writes all or nothing.
-- UNLOGGED: plaintext passwords in a batch are never written to the WAL, and the rows
-- are deleted in the transaction that loaded them. import_rows reads a batch with the
-- API's normalisation (lower-cased addresses, empty fields as NULL).
-- depends: 0009_create_import_helpers

CREATE UNLOGGED TABLE public.import_staging (
    batch         uuid NOT NULL,
    line          integer NOT NULL,
    kind          text,
    address       text,
    destination   text,
    password      text,
    password_hash text,
    realname      text,
    maildir       text,
    quota_bytes   text,
    transport     text,
    gid           text,
    active        text,
    PRIMARY KEY (batch, line)
);

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

-- `mailbook import` and `export` carry what 0019 and 0020 added: a mailbox's
-- quota_messages and the services turned off for it (services_off, names separated by
-- spaces), and a domain's services_off and caps (max_mailboxes, max_aliases,
-- max_quota_bytes). Without them an export and re-import would quietly lift caps and
-- let users back into services.
-- depends: 0022_relay_domains

ALTER TABLE public.import_staging
    ADD COLUMN quota_messages  text,
    ADD COLUMN services_off    text,
    ADD COLUMN max_mailboxes   text,
    ADD COLUMN max_aliases     text,
    ADD COLUMN max_quota_bytes text;

-- the same normalisation as before (0014), with the new columns last
CREATE OR REPLACE VIEW public.import_rows AS
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
       nullif(lower(trim(s.active)), '') AS active,
       nullif(trim(s.quota_messages), '') AS quota_messages,
       coalesce(string_to_array(nullif(lower(trim(s.services_off)), ''), ' '), '{}') AS services_off,
       nullif(trim(s.max_mailboxes), '') AS max_mailboxes,
       nullif(trim(s.max_aliases), '') AS max_aliases,
       nullif(trim(s.max_quota_bytes), '') AS max_quota_bytes
  FROM public.import_staging s;

-- line numbers count the newlines inside every field, the new ones included
CREATE OR REPLACE VIEW public.import_lines AS
SELECT s.batch, s.seq,
       (1 + sum(1 + length(x.fields) - length(replace(x.fields, E'\n', '')))
                OVER (PARTITION BY s.batch ORDER BY s.seq ROWS UNBOUNDED PRECEDING))::integer AS line
  FROM public.import_staging s,
       LATERAL (SELECT concat(s.kind, s.address, s.destination, s.password, s.password_hash, s.realname,
                              s.maildir, s.quota_bytes, s.transport, s.gid, s.active, s.quota_messages,
                              s.services_off, s.max_mailboxes, s.max_aliases, s.max_quota_bytes) AS fields) x;

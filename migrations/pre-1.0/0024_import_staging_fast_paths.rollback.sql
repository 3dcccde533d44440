-- Undo 0024: import_rows and the staging sequence as 0023 left them.
ALTER TABLE public.import_staging ALTER COLUMN seq SET CACHE 1;

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

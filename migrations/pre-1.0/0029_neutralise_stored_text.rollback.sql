-- Undo 0029: realname_error() as 0011 left it, import_rows as 0024 left it, no cell helpers.
CREATE OR REPLACE FUNCTION public.realname_error(realname text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN realname ~ '[[:cntrl:]]' OR length(realname) > 255
        THEN 'realname ' || public.quoted(realname) || ' must be printable and at most 255 characters'
END
$f$;

CREATE OR REPLACE VIEW public.import_rows AS
SELECT s.batch, s.seq,
       CASE WHEN s.kind IN ('domain', 'mailbox', 'alias', 'sendas') THEN s.kind ELSE lower(trim(s.kind)) END AS kind,
       lower(s.address) AS address,
       lower(nullif(s.destination, '')) AS destination,
       nullif(s.password, '') AS password,
       public.normalised_password_hash(nullif(s.password_hash, '')) AS password_hash,
       nullif(s.realname, '') AS realname,
       coalesce(nullif(s.maildir, ''), CASE WHEN s.kind = 'mailbox' OR lower(trim(s.kind)) = 'mailbox'
                                             THEN lower(public.default_maildir(s.address)) END) AS maildir,
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

DROP FUNCTION public.csv_cell_out(text);
DROP FUNCTION public.csv_cell_in(text);
DROP FUNCTION public.code_point(text);

-- Undo 0201_refuse_comment_map_keys: address_error() as 0102_baseline_validation wrote it
-- (a local part may start with "#" again; rows stored meanwhile stay valid under it).
CREATE OR REPLACE FUNCTION public.address_error(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    -- the common case, accepted at once: lower-case local part @ domain in one pattern;
    -- at most 64 bytes, so no length rule can fail; no "-" next to a "." or the "@" and
    -- none at the end (the domain's hyphen rules; a local part with ".-" goes on below)
    WHEN octet_length(address) <= 64
     AND address ~ '^[a-z0-9!#$&''*+=?^_`{|}~-]+(\.[a-z0-9!#$&''*+=?^_`{|}~-]+)*@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z][a-z0-9-]*$'
     AND strpos(address, '@-') = 0 AND address NOT LIKE '%-'
     AND strpos(address, '.-') = 0 AND strpos(address, '-.') = 0
        THEN NULL
    WHEN address IS NULL THEN 'address must not be NULL'
    WHEN address <> lower(address)
        THEN 'address ' || public.quoted(address) || ' must be lowercase'
    WHEN length(address) > 254
        THEN 'address ' || public.quoted(address) || ' is longer than 254 characters'
    WHEN address !~ '^[^@]+@[^@]+$'
        THEN public.quoted(address) || ' is not an email address: expected local-part@domain'
    WHEN length(split_part(address, '@', 1)) > 64
        THEN 'local part of ' || public.quoted(address) || ' is longer than 64 characters'
    WHEN split_part(address, '@', 1) !~ '^[a-z0-9!#$&''*+=?^_`{|}~-]+(\.[a-z0-9!#$&''*+=?^_`{|}~-]+)*$'
        THEN 'local part of ' || public.quoted(address)
             || ' may only use letters, digits, single dots and !#$&''*+=?^_`{|}~-'
    ELSE public.domain_name_error(split_part(address, '@', 2))
END
$f$;
COMMENT ON FUNCTION public.address_error(text) IS 'Why an address is invalid for a mailbox or alias (lower case, local@domain, RFC 5321 lengths), or NULL.';


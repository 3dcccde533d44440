-- A local part starting with "#" made a key Postfix cannot store: postmap reads a line of
-- its input whose first character is "#" as a comment, silently, in `maps compile` and in
-- `maps follow`'s `postmap -i`, so the key was never stored. The address then fell
-- through to a catch-all, or a disabled one was accepted. address_error() now
-- refuses it; it is the one rule behind every key the compiled maps write: mailbox
-- (users.email), alias and alias destination (aliases, via alias_error), send-as address,
-- and the local@alias keys of alias domains (made from those). Nothing else of postmap's
-- input format can reach a key: whitespace and control characters were refused already,
-- and a key is at most 255 bytes (LMDB takes 511). Checked with Postfix 3.7's postmap on
-- every character a local part may start with: only "#" is lost.
-- CREATE OR REPLACE keeps the CHECKs that call it (users_email_valid, aliases_*_valid,
-- send_as_address_valid); rows stored before are not checked again: `mailbook doctor`
-- lists them ("stored addresses"). Still plain IMMUTABLE SQL with the fast path, so
-- PostgreSQL inlines it into the CHECKs (0102's header says why).
-- depends: 0200_count_password_attempts_first

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
     AND left(address, 1) <> '#'
        THEN NULL
    WHEN address IS NULL THEN 'address must not be NULL'
    WHEN address <> lower(address)
        THEN 'address ' || public.quoted(address) || ' must be lowercase'
    WHEN length(address) > 254
        THEN 'address ' || public.quoted(address) || ' is longer than 254 characters'
    WHEN address !~ '^[^@]+@[^@]+$'
        THEN public.quoted(address) || ' is not an email address: expected local-part@domain'
    WHEN left(address, 1) = '#'
        THEN 'local part of ' || public.quoted(address) || ' starts with "#": a Postfix table source'
             || ' (postmap, the compiled maps) reads that line as a comment and drops the key'
    WHEN length(split_part(address, '@', 1)) > 64
        THEN 'local part of ' || public.quoted(address) || ' is longer than 64 characters'
    WHEN split_part(address, '@', 1) !~ '^[a-z0-9!#$&''*+=?^_`{|}~-]+(\.[a-z0-9!#$&''*+=?^_`{|}~-]+)*$'
        THEN 'local part of ' || public.quoted(address)
             || ' may only use letters, digits, single dots and !#$&''*+=?^_`{|}~-'
    ELSE public.domain_name_error(split_part(address, '@', 2))
END
$f$;
COMMENT ON FUNCTION public.address_error(text) IS 'Why an address is invalid for a mailbox or alias (lower case, local@domain, RFC 5321 lengths, no "#" first), or NULL.';


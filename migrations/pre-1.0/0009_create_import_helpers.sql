-- Helpers for bulk import (`mailbook import`), shared with the SQL API so that a CSV
-- row and an add_mailbox() call are held to the same rules: plaintext-password checks,
-- the normal form of an imported hash, the default maildir and the realname rule
-- (which the users table's CHECK now calls instead of repeating it).
-- depends: 0008_create_mailboxes_view

-- password_error(password): a plaintext password add_mailbox can hash. bcrypt reads at
-- most 72 bytes and would silently ignore the rest; a value that is itself a hash
-- belongs in add_mailbox_hashed. Never echoes the value.
CREATE FUNCTION public.password_error(password text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN password IS NULL THEN 'password must not be NULL'
    WHEN password = '' THEN 'password must not be empty'
    WHEN public.password_hash_error(password) IS NULL
        THEN 'the password looks like a password hash; to store an existing hash, use add_mailbox_hashed()'
    WHEN octet_length(password) > 72 THEN 'password is longer than 72 bytes; bcrypt would ignore the rest'
END
$f$;

-- normalised_password_hash(hash): a hash imported from another server in the form
-- Dovecot needs: bare $2y$/$2b$/$2a$ -> {BLF-CRYPT}, $6$ -> {SHA512-CRYPT}, $5$ ->
-- {SHA256-CRYPT}, $1$ -> {MD5-CRYPT}, $argon2id$/$argon2i$ -> {ARGON2ID}/{ARGON2I}; a
-- lower-case {scheme} is upper-cased. Check the result with password_hash_error().
CREATE FUNCTION public.normalised_password_hash(hash text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN hash ~ '^\{[A-Za-z0-9.-]+\}'
        THEN upper(substring(hash FROM '^\{[^}]*\}')) || substring(hash FROM '^\{[^}]*\}(.*)$')
    WHEN hash ~ '^\$2[abxy]\$' THEN '{BLF-CRYPT}' || hash
    WHEN hash LIKE '$6$%' THEN '{SHA512-CRYPT}' || hash
    WHEN hash LIKE '$5$%' THEN '{SHA256-CRYPT}' || hash
    WHEN hash LIKE '$1$%' THEN '{MD5-CRYPT}' || hash
    WHEN hash LIKE '$argon2id$%' THEN '{ARGON2ID}' || hash
    WHEN hash LIKE '$argon2i$%' THEN '{ARGON2I}' || hash
    ELSE hash
END
$f$;

-- default_maildir(address): domain/localpart/, so two domains' "foo" never share a
-- directory (the tutorial's "foo/" would).
CREATE FUNCTION public.default_maildir(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT split_part(address, '@', 2) || '/' || split_part(address, '@', 1) || '/'
$f$;

-- realname_error(realname): printable, at most 255 characters; NULL is fine.
CREATE FUNCTION public.realname_error(realname text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN realname ~ '[[:cntrl:]]' OR length(realname) > 255
        THEN format('realname %s must be printable and at most 255 characters', public.quoted(realname))
END
$f$;

ALTER TABLE public.users DROP CONSTRAINT users_realname_printable;
ALTER TABLE public.users ADD CONSTRAINT users_realname_printable
    CHECK (public.realname_error(realname) IS NULL);

REVOKE ALL ON FUNCTION public.password_error(text), public.normalised_password_hash(text),
    public.default_maildir(text), public.realname_error(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.password_error(text), public.normalised_password_hash(text),
    public.default_maildir(text), public.realname_error(text) TO mailadmin;

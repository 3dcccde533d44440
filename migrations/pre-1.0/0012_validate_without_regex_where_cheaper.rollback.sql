-- Undo 0012_validate_without_regex_where_cheaper: the 0011 definitions.

CREATE OR REPLACE FUNCTION public.domain_name_error(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN name IS NULL THEN 'domain must not be NULL'
    WHEN name = '' THEN 'domain must not be empty'
    WHEN name <> lower(name) THEN 'domain ' || public.quoted(name) || ' must be lowercase'
    WHEN length(name) > 253 THEN 'domain ' || public.quoted(name) || ' is longer than 253 characters'
    -- labels of letters, digits and hyphens, at least two, the last starting with a
    -- letter; no label starting or ending with a hyphen or longer than 63
    WHEN name !~ '^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z][a-z0-9-]*$'
      OR name ~ '(^|\.)-|-(\.|$)|[a-z0-9-]{64}'
        THEN public.quoted(name) || ' is not a valid domain name: use letters, digits, hyphens and dots, '
             'at least two labels, and punycode (xn--) for international names'
END
$f$;

CREATE OR REPLACE FUNCTION public.password_hash_error(hash text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN hash IS NULL THEN 'password hash must not be NULL'
    WHEN hash = '' THEN 'password must not be empty'
    WHEN hash ~ '^\{(PLAIN|CLEAR|CLEARTEXT|PLAIN-TRUNC)\}'
        THEN 'plaintext password schemes are refused; store a hash'
    -- bcrypt first, the common case: 22 characters of salt and 31 of hash; counted with
    -- split_part, because a bounded repeat {53} in the regex costs four times as much
    WHEN hash ~ '^(\{(BLF-CRYPT|CRYPT)\})?\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]+$'
           AND length(split_part(hash, '$', 4)) = 53
      OR hash ~ '^\{SHA512-CRYPT\}\$6\$(rounds=[0-9]+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$'
      OR hash ~ '^\{SHA256-CRYPT\}\$5\$(rounds=[0-9]+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{43}$'
      OR hash ~ '^\{MD5-CRYPT\}\$1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$'
      OR hash ~ '^\{ARGON2ID?\}\$argon2id?\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$'
      OR hash ~ '^\{(SSHA|SSHA256|SSHA512)\}[A-Za-z0-9+/]{20,}={0,2}$'
      OR hash ~ '^\{PBKDF2\}\$1\$[0-9a-f]+\$[0-9]+\$[0-9a-f]+$'
        THEN NULL
    ELSE 'password hash is not in a recognised form: expected {BLF-CRYPT}, {SHA512-CRYPT}, '
         '{SHA256-CRYPT}, {MD5-CRYPT}, {ARGON2I}, {ARGON2ID}, {SSHA512}, {SSHA256}, {SSHA} '
         'or {PBKDF2} followed by the hash, as `doveadm pw` prints it'
END
$f$;

CREATE OR REPLACE FUNCTION public.maildir_error(maildir text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN maildir IS NULL THEN 'maildir must not be NULL'
    WHEN maildir = '' THEN 'maildir must not be empty'
    WHEN length(maildir) > 255
        THEN 'maildir ' || public.quoted(maildir) || ' is longer than 255 characters'
    WHEN maildir ~ '[[:cntrl:]]'
        THEN 'maildir ' || public.quoted(maildir) || ' contains control characters'
    WHEN maildir LIKE '/%'
        THEN 'maildir ' || public.quoted(maildir) || ' must be relative to virtual_mailbox_base (no leading "/")'
    WHEN maildir NOT LIKE '%/'
        THEN 'maildir ' || public.quoted(maildir) || ' must end with "/" (Postfix writes Maildir format only then)'
    WHEN maildir ~ '(^|/)\.{1,2}/' OR maildir LIKE '%//%'
        THEN 'maildir ' || public.quoted(maildir) || ' must not contain ".", ".." or empty path segments'
    WHEN maildir !~ '^([A-Za-z0-9!#$&''*+=?@^_`{|}~.-]+/)+$'
        THEN 'maildir ' || public.quoted(maildir) || ' may only use letters, digits, "/" and !#$&''*+=?@^_`{|}~.-'
END
$f$;

CREATE OR REPLACE FUNCTION public.normalised_password_hash(hash text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN hash ~ '^\{[A-Za-z0-9.-]+\}'
        THEN upper(left(hash, position('}' IN hash))) || substr(hash, position('}' IN hash) + 1)
    WHEN hash ~ '^\$2[abxy]\$' THEN '{BLF-CRYPT}' || hash
    WHEN hash LIKE '$6$%' THEN '{SHA512-CRYPT}' || hash
    WHEN hash LIKE '$5$%' THEN '{SHA256-CRYPT}' || hash
    WHEN hash LIKE '$1$%' THEN '{MD5-CRYPT}' || hash
    WHEN hash LIKE '$argon2id$%' THEN '{ARGON2ID}' || hash
    WHEN hash LIKE '$argon2i$%' THEN '{ARGON2I}' || hash
    ELSE hash
END
$f$;

CREATE OR REPLACE FUNCTION public.address_error(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
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

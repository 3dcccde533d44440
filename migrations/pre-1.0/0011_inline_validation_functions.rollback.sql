-- Undo 0011_inline_validation_functions: the 0004/0009 definitions (format() messages).

CREATE OR REPLACE FUNCTION public.domain_name_error(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN name IS NULL THEN 'domain must not be NULL'
    WHEN name = '' THEN 'domain must not be empty'
    WHEN name <> lower(name) THEN format('domain %s must be lowercase', public.quoted(name))
    WHEN length(name) > 253 THEN format('domain %s is longer than 253 characters', public.quoted(name))
    WHEN name !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'
        THEN format('%s is not a valid domain name: use letters, digits, hyphens and dots, '
                    'at least two labels, and punycode (xn--) for international names',
                    public.quoted(name))
END
$f$;

CREATE OR REPLACE FUNCTION public.address_error(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN address IS NULL THEN 'address must not be NULL'
    WHEN address <> lower(address)
        THEN format('address %s must be lowercase', public.quoted(address))
    WHEN length(address) > 254
        THEN format('address %s is longer than 254 characters', public.quoted(address))
    WHEN address !~ '^[^@]+@[^@]+$'
        THEN format('%s is not an email address: expected local-part@domain', public.quoted(address))
    WHEN length(split_part(address, '@', 1)) > 64
        THEN format('local part of %s is longer than 64 characters', public.quoted(address))
    WHEN split_part(address, '@', 1) !~ '^[a-z0-9!#$&''*+=?^_`{|}~-]+(\.[a-z0-9!#$&''*+=?^_`{|}~-]+)*$'
        THEN format('local part of %s may only use letters, digits, single dots and !#$&''*+=?^_`{|}~-',
                    public.quoted(address))
    ELSE public.domain_name_error(split_part(address, '@', 2))
END
$f$;

CREATE OR REPLACE FUNCTION public.maildir_error(maildir text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN maildir IS NULL THEN 'maildir must not be NULL'
    WHEN maildir = '' THEN 'maildir must not be empty'
    WHEN length(maildir) > 255
        THEN format('maildir %s is longer than 255 characters', public.quoted(maildir))
    WHEN maildir ~ '[[:cntrl:]]'
        THEN format('maildir %s contains control characters', public.quoted(maildir))
    WHEN maildir LIKE '/%'
        THEN format('maildir %s must be relative to virtual_mailbox_base (no leading "/")',
                    public.quoted(maildir))
    WHEN maildir NOT LIKE '%/'
        THEN format('maildir %s must end with "/" (Postfix writes Maildir format only then)',
                    public.quoted(maildir))
    WHEN maildir ~ '(^|/)\.{1,2}/' OR maildir LIKE '%//%'
        THEN format('maildir %s must not contain ".", ".." or empty path segments',
                    public.quoted(maildir))
    WHEN maildir !~ '^([A-Za-z0-9!#$&''*+=?@^_`{|}~.-]+/)+$'
        THEN format('maildir %s may only use letters, digits, "/" and !#$&''*+=?@^_`{|}~.-',
                    public.quoted(maildir))
END
$f$;

CREATE OR REPLACE FUNCTION public.transport_error(transport text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN transport IS NULL THEN 'transport must not be NULL'
    WHEN length(transport) > 255
        THEN format('transport %s is longer than 255 characters', public.quoted(transport))
    WHEN transport !~ '^[a-z0-9][a-z0-9_-]*:[^[:space:][:cntrl:],]*$'
        THEN format('%s is not a Postfix transport: expected name:nexthop, e.g. virtual: or smtp:[relay.example.com]',
                    public.quoted(transport))
END
$f$;

CREATE OR REPLACE FUNCTION public.realname_error(realname text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN realname ~ '[[:cntrl:]]' OR length(realname) > 255
        THEN format('realname %s must be printable and at most 255 characters', public.quoted(realname))
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
    WHEN hash ~ '^(\{(BLF-CRYPT|CRYPT)\})?\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$'
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

CREATE OR REPLACE FUNCTION public.normalised_password_hash(hash text) RETURNS text
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

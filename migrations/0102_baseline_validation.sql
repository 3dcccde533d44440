-- What a valid domain, address, maildir, transport, real name and password hash look
-- like, written once. Each *_error(value) returns NULL for a good value and otherwise a
-- sentence saying what is wrong. The tables call them in CHECK constraints, so a direct
-- INSERT is held to the same rules as the API, and the API and `mailbook import` raise
-- their sentence as the error message; front-ends (mailadmin) may validate with them
-- before calling the API.
-- They are plain IMMUTABLE SQL, SECURITY INVOKER, built with || and no format() (which
-- is only STABLE): PostgreSQL then inlines them into the CHECKs and the import. Valid
-- input, what a bulk import mostly sees, takes a fast path of LIKE, strpos() and one
-- pattern; only a bad value goes through the rule-by-rule explanation. (Measured on
-- 1,000,000 rows when these were written; migrations/pre-1.0/0011, 0012, 0025 say how.)
-- depends: 0101_baseline_extensions

-- quoted(value): a value fit to show inside an error message: double-quoted, control
-- characters replaced by '?', cut at 80 characters.
CREATE FUNCTION public.quoted(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
    SELECT '"' || regexp_replace(left(value, 80), '[[:cntrl:]]', '?', 'g')
               || CASE WHEN length(value) > 80 THEN '..."' ELSE '"' END
$f$;
COMMENT ON FUNCTION public.quoted(text) IS 'A value in double quotes for error messages: control characters shown as ?, cut after 80 characters.';

-- code_point(ch): 'U+202E', as Unicode names a character
CREATE FUNCTION public.code_point(ch text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT 'U+' || upper(lpad(to_hex(ascii(ch)), greatest(4, length(to_hex(ascii(ch)))), '0'))
$f$;
COMMENT ON FUNCTION public.code_point(text) IS 'A character as U+XXXX, for messages about unprintable input.';

-- domain_name_error(name): lowercase ASCII host name with at least two labels. IDN
-- domains are stored in punycode (xn--...), the form Postfix looks them up in.
CREATE FUNCTION public.domain_name_error(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN name IS NULL THEN 'domain must not be NULL'
    WHEN name = '' THEN 'domain must not be empty'
    WHEN name <> lower(name) THEN 'domain ' || public.quoted(name) || ' must be lowercase'
    WHEN length(name) > 253 THEN 'domain ' || public.quoted(name) || ' is longer than 253 characters'
    -- labels of letters, digits and hyphens, at least two, the last starting with a
    -- letter; no label starting or ending with a hyphen; none longer than 63 (which
    -- only a name longer than 63 can have)
    WHEN name !~ '^[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z][a-z0-9-]*$'
      OR name LIKE '-%' OR name LIKE '%-' OR strpos(name, '.-') > 0 OR strpos(name, '-.') > 0
      OR (length(name) > 63 AND name ~ '[a-z0-9-]{64}')
        THEN public.quoted(name) || ' is not a valid domain name: use letters, digits, hyphens and dots, '
             'at least two labels, and punycode (xn--) for international names'
END
$f$;
COMMENT ON FUNCTION public.domain_name_error(text) IS 'Why a domain name is invalid (lower-case LDH labels, a dot, at most 253 characters), or NULL.';

-- address_error(address): local@domain, lowercase. The local part allows RFC 5322's
-- atext except '/' and '%' (a path separator in the derived maildir, and the old
-- user%host source-routing trick), with single dots between atoms.
CREATE FUNCTION public.address_error(address text) RETURNS text
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

-- alias_error(alias): NULL for an address or an "@domain" catch-all, else the problem.
CREATE FUNCTION public.alias_error(alias text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN left(alias, 1) = '@' THEN public.domain_name_error(substr(alias, 2))
    ELSE public.address_error(alias)
END
$f$;
COMMENT ON FUNCTION public.alias_error(text) IS 'Why an alias address is invalid (an address, or "@domain" for a catch-all), or NULL.';

-- maildir_error(maildir): a path relative to virtual_mailbox_base that cannot escape it.
CREATE FUNCTION public.maildir_error(maildir text) RETURNS text
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
    WHEN maildir LIKE './%' OR maildir LIKE '../%' OR strpos(maildir, '/./') > 0
      OR strpos(maildir, '/../') > 0 OR strpos(maildir, '//') > 0
        THEN 'maildir ' || public.quoted(maildir) || ' must not contain ".", ".." or empty path segments'
    -- with no leading "/", a trailing "/" and no empty segment, this is the whole shape
    WHEN maildir ~ '[^A-Za-z0-9!#$&''*+=?@^_`{|}~./-]'
        THEN 'maildir ' || public.quoted(maildir) || ' may only use letters, digits, "/" and !#$&''*+=?@^_`{|}~.-'
END
$f$;
COMMENT ON FUNCTION public.maildir_error(text) IS 'Why a maildir is unsafe (empty, absolute, "..", control characters, over 255 characters, not ending in "/"), or NULL.';

-- transport_error(transport): a Postfix transport(5) value, "transport:nexthop".
CREATE FUNCTION public.transport_error(transport text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN transport IS NULL THEN 'transport must not be NULL'
    WHEN length(transport) > 255
        THEN 'transport ' || public.quoted(transport) || ' is longer than 255 characters'
    WHEN transport !~ '^[a-z0-9][a-z0-9_-]*:[^[:space:][:cntrl:],]*$'
        THEN public.quoted(transport)
             || ' is not a Postfix transport: expected name:nexthop, e.g. virtual: or smtp:[relay.example.com]'
END
$f$;
COMMENT ON FUNCTION public.transport_error(text) IS 'Why a Postfix transport is invalid (name:nexthop, e.g. virtual: or smtp:[relay.example.com]), or NULL.';

-- Every character of Unicode's general category Cf (Python 3.11's unicodedata, Unicode
-- 14) is refused: bidi overrides (U+202E makes "gpj.exe" read as "exe.jpg"), zero-width
-- characters, soft hyphens make a name read differently from what it is.
-- realname_error(realname): printable, at most 255 characters; NULL is fine.
CREATE FUNCTION public.realname_error(realname text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    -- the common case in one pattern: no control and no format character, short enough
    WHEN realname !~ '[[:cntrl:]\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]' AND length(realname) <= 255 THEN NULL
    WHEN realname ~ '[[:cntrl:]]' OR length(realname) > 255
        THEN 'realname ' || public.quoted(realname) || ' must be printable and at most 255 characters'
    WHEN realname ~ '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]'
        THEN 'realname ' || public.quoted(regexp_replace(realname, '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]', '?', 'g'))
             || ' contains the invisible format character '
             || public.code_point(substring(realname FROM '[\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891\u08E2\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U00013438\U0001BCA0-\U0001BCA3\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F]'))
             || ' (bidi controls, zero-width and other format characters make a name read differently'
             || ' from what it is)'
END
$f$;
COMMENT ON FUNCTION public.realname_error(text) IS 'Why a real name is refused (control characters, over 255 characters), or NULL.';

-- Work factors are bounded, at least what the scheme's definition or common tools
-- require, at most about one second of one core per login (`doveadm pw -t`): bcrypt
-- cost 4 to 14; SHA512/SHA256-CRYPT rounds 1000 to 3,000,000; PBKDF2 rounds 1000 to
-- 1,000,000 (Dovecot's salt is 16 characters of ./0-9A-Za-z, its hash 40 hex digits);
-- ARGON2I/ID t 1 to 10, p 1 to 16, m 8*p to 262,144 KiB. MD5-CRYPT and SSHA have fixed
-- costs. {CRAM-MD5} (vmm 0.7's default) is taken so that `mailbook import --from vmm`
-- keeps its users' passwords; `mailbook doctor` lists the mailboxes that carry one.
-- A SHA512/SHA256-CRYPT salt is crypt's alphabet plus "+": PostfixAdmin's sha512.b64
-- writes base64 salts (one in five has a "+"), which Dovecot's crypt() (libxcrypt)
-- verifies; what libxcrypt refuses in a salt ("!", "*", ";", "\", space) stays refused.
-- password_hash_error(hash): a hash Dovecot can verify, in its {SCHEME} form, or a bare
-- bcrypt string as the tutorial's crypt() wrote. Never echoes the value: a plaintext
-- password passed here by mistake must not end up in an error message or a log.
CREATE FUNCTION public.password_hash_error(hash text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN hash IS NULL THEN 'password hash must not be NULL'
    WHEN hash = '' THEN 'password must not be empty'
    -- bcrypt first, the common case, as in 0025 but with cost 04 to 14 only
    WHEN (hash LIKE '{BLF-CRYPT}$2_$__$%' OR hash LIKE '{CRYPT}$2_$__$%' OR hash LIKE '$2_$__$%')
      AND substr(hash, strpos(hash, '$') + 2, 1) IN ('a', 'b', 'x', 'y')
      AND substr(hash, strpos(hash, '$') + 4, 2) IN ('04', '05', '06', '07', '08', '09', '10', '11', '12',
          '13', '14')
      AND length(hash) - strpos(hash, '$') = 59
      AND right(hash, 53) !~ '[^./A-Za-z0-9]'
        THEN NULL
    WHEN hash ~ '^\{(PLAIN|CLEAR|CLEARTEXT|PLAIN-TRUNC)\}'
        THEN 'plaintext password schemes are refused; store a hash'
    WHEN hash ~ '^(\{BLF-CRYPT\}|\{CRYPT\})?\$2[abxy]\$[0-9]{2}\$[./A-Za-z0-9]{53}$'
        THEN 'password hash {BLF-CRYPT} has cost ' || substr(hash, strpos(hash, '$') + 4, 2)
             || ': accepted are 4 to 14 (above 14 one login costs more than a second of CPU)'
    WHEN hash ~ '^\{SHA(512|256)-CRYPT\}\$[56]\$rounds=[0-9]+\$'
     AND substring(hash FROM 'rounds=([0-9]+)')::numeric NOT BETWEEN 1000 AND 3000000
        THEN 'password hash ' || substring(hash FROM '^\{[A-Z0-9-]+\}') || ' has rounds='
             || substring(hash FROM 'rounds=([0-9]+)') || ': accepted are 1000 to 3000000 (fewer are raised '
             'to 1000 by crypt() anyway; more cost more than a second of CPU a login)'
    WHEN hash ~ '^\{PBKDF2\}\$1\$[./A-Za-z0-9]{1,64}\$[0-9]+\$[0-9a-f]{40}$'
     AND split_part(hash, '$', 4)::numeric NOT BETWEEN 1000 AND 1000000
        THEN 'password hash {PBKDF2} has ' || split_part(hash, '$', 4) || ' rounds: accepted are 1000 to '
             '1000000 (fewer let guesses through cheaply; more cost more than a second of CPU a login)'
    WHEN hash ~ '^\{ARGON2ID?\}\$argon2id?\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$'
     AND (substring(hash FROM ',t=([0-9]+)')::numeric NOT BETWEEN 1 AND 10
          OR substring(hash FROM ',p=([0-9]+)')::numeric NOT BETWEEN 1 AND 16
          OR substring(hash FROM 'm=([0-9]+)')::numeric
             NOT BETWEEN 8 * substring(hash FROM ',p=([0-9]+)')::numeric AND 262144)
        THEN 'password hash ' || substring(hash FROM '^\{[A-Z0-9]+\}') || ' has m='
             || substring(hash FROM 'm=([0-9]+)') || ',t=' || substring(hash FROM ',t=([0-9]+)') || ',p='
             || substring(hash FROM ',p=([0-9]+)') || ': accepted are t 1 to 10, p 1 to 16 and m from 8*p to '
             '262144 KiB (256 MiB a login)'
    WHEN hash ~ '^\{SHA512-CRYPT\}\$6\$(rounds=[0-9]+\$)?[./A-Za-z0-9+]{1,16}\$[./A-Za-z0-9]{86}$'
      OR hash ~ '^\{SHA256-CRYPT\}\$5\$(rounds=[0-9]+\$)?[./A-Za-z0-9+]{1,16}\$[./A-Za-z0-9]{43}$'
      OR hash ~ '^\{MD5-CRYPT\}\$1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$'
      OR hash ~ '^\{ARGON2ID?\}\$argon2id?\$v=[0-9]+\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$'
      OR hash ~ '^\{(SSHA|SSHA256|SSHA512)\}[A-Za-z0-9+/]{20,}={0,2}$'
      OR hash ~ '^\{PBKDF2\}\$1\$[./A-Za-z0-9]{1,64}\$[0-9]+\$[0-9a-f]{40}$'
      OR hash ~ '^\{CRAM-MD5\}[0-9a-f]{64}$'
        THEN NULL
    ELSE 'password hash is not in a recognised form: expected {BLF-CRYPT}, {SHA512-CRYPT}, '
         '{SHA256-CRYPT}, {MD5-CRYPT}, {ARGON2I}, {ARGON2ID}, {SSHA512}, {SSHA256}, {SSHA}, '
         '{PBKDF2} or {CRAM-MD5} followed by the hash, as `doveadm pw` prints it'
END
$f$;
COMMENT ON FUNCTION public.password_hash_error(text) IS 'Why a password hash is not one Dovecot verifies ({BLF-CRYPT}, {SHA512-CRYPT}, ...), or NULL.';

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
COMMENT ON FUNCTION public.password_error(text) IS 'Why a password cannot be stored (NULL, empty, over bcrypt''s 72 bytes, or a hash given as a password), or NULL.';

-- normalised_password_hash(hash): a hash imported from another server in the form
-- Dovecot needs: bare $2y$/$2b$/$2a$ -> {BLF-CRYPT}, $6$ -> {SHA512-CRYPT}, $5$ ->
-- {SHA256-CRYPT}, $1$ -> {MD5-CRYPT}, $argon2id$/$argon2i$ -> {ARGON2ID}/{ARGON2I}; a
-- lower-case {scheme} is upper-cased. Check the result with password_hash_error().
CREATE FUNCTION public.normalised_password_hash(hash text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN hash LIKE '{BLF-CRYPT}%' OR hash LIKE '{SHA512-CRYPT}%' THEN hash
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
COMMENT ON FUNCTION public.normalised_password_hash(text) IS 'A hash with its {SCHEME} prefix added when a bare crypt string was given.';

-- default_maildir(address): domain/localpart/, so two domains' "foo" never share a
-- directory (the tutorial's "foo/" would).
CREATE FUNCTION public.default_maildir(address text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT split_part(address, '@', 2) || '/' || split_part(address, '@', 1) || '/'
$f$;
COMMENT ON FUNCTION public.default_maildir(text) IS 'The maildir an address gets when none is given: domain/local/.';

-- service_list_error(services): NULL for a list of known service names, else why not.
-- "submission" is Dovecot's own submission server; Postfix's SASL asks as "smtp".
CREATE FUNCTION public.service_list_error(services text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN services IS NULL THEN 'services must not be NULL'
    WHEN array_position(services, NULL) IS NOT NULL THEN 'a service name must not be NULL'
    ELSE (SELECT format('unknown service %s; the services are imap, pop3, smtp, submission and sieve',
                        public.quoted(s))
            FROM unnest(services) AS s
           WHERE s NOT IN ('imap', 'pop3', 'smtp', 'submission', 'sieve')
           LIMIT 1)
END
$f$;
COMMENT ON FUNCTION public.service_list_error(text[]) IS 'Why a list of service names is invalid (an unknown name), or NULL.';

REVOKE ALL ON FUNCTION public.quoted(text), public.domain_name_error(text),
    public.address_error(text), public.maildir_error(text), public.transport_error(text),
    public.password_hash_error(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.quoted(text), public.domain_name_error(text),
    public.address_error(text), public.maildir_error(text), public.transport_error(text),
    public.password_hash_error(text) TO mailadmin;
REVOKE ALL ON FUNCTION public.password_error(text), public.normalised_password_hash(text),
    public.default_maildir(text), public.realname_error(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.password_error(text), public.normalised_password_hash(text),
    public.default_maildir(text), public.realname_error(text) TO mailadmin;
REVOKE ALL ON FUNCTION public.alias_error(text), public.service_list_error(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.alias_error(text), public.service_list_error(text[]) TO mailadmin;
REVOKE ALL ON FUNCTION public.code_point(text) FROM PUBLIC;

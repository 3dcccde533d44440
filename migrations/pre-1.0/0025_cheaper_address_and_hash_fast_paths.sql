-- Two validation helpers, same rules and answers, cheaper on the valid input a bulk
-- import mostly sees (each CHECK runs once per row written). Measured on 1,000,000
-- addresses and bcrypt hashes: address_error 1.28 -> 1.02 s, the bcrypt body test
-- 0.74 -> 0.56 s.
--   address_error: the fast path measures the address in bytes (octet_length: never
--   fewer than its characters, so no address it accepts is longer than 64 characters)
--   and looks for ".-" and "-." in the whole address instead of cutting out the domain
--   first: an address whose local part has them ("a.-b@...") now takes the explanation
--   path, which still finds it valid.
--   password_hash_error: the bcrypt body is the last 53 characters (right()), which the
--   length test beside it already requires, instead of a substr() from the third "$".
-- tests/test_sql_api.py proves both give 0012's answers on the validation corpus.
-- depends: 0024_import_staging_fast_paths

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

CREATE OR REPLACE FUNCTION public.password_hash_error(hash text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN hash IS NULL THEN 'password hash must not be NULL'
    WHEN hash = '' THEN 'password must not be empty'
    -- bcrypt first, the common case: an optional {BLF-CRYPT} or {CRYPT}, then
    -- $2<a|b|x|y>$<cost 04-31>$ and 53 characters of ./A-Za-z0-9 (salt and hash);
    -- strpos(hash, '$') is where the $2 starts; with the length test, the body is the
    -- last 53 characters
    WHEN (hash LIKE '{BLF-CRYPT}$2_$__$%' OR hash LIKE '{CRYPT}$2_$__$%' OR hash LIKE '$2_$__$%')
      AND substr(hash, strpos(hash, '$') + 2, 1) IN ('a', 'b', 'x', 'y')
      AND substr(hash, strpos(hash, '$') + 4, 2) IN ('04', '05', '06', '07', '08', '09', '10', '11', '12',
          '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28',
          '29', '30', '31')
      AND length(hash) - strpos(hash, '$') = 59
      AND right(hash, 53) !~ '[^./A-Za-z0-9]'
        THEN NULL
    WHEN hash ~ '^\{(PLAIN|CLEAR|CLEARTEXT|PLAIN-TRUNC)\}'
        THEN 'plaintext password schemes are refused; store a hash'
    WHEN hash ~ '^\{SHA512-CRYPT\}\$6\$(rounds=[0-9]+\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{86}$'
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

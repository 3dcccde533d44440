-- Undo 0027: password_hash_error() as 0025 left it (any bcrypt cost 04-31, any rounds).
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

ALTER TABLE public.settings DROP CONSTRAINT settings_bcrypt_cost_range,
    ADD CONSTRAINT settings_bcrypt_cost_range CHECK (bcrypt_cost BETWEEN 4 AND 31);

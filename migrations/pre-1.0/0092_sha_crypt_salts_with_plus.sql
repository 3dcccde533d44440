-- A SHA512-CRYPT or SHA256-CRYPT salt may contain "+". PHP's crypt() takes any salt,
-- and PostfixAdmin's sha512.b64 scheme writes 16 characters of base64 (A-Za-z0-9+/), so
-- about one mailbox in five it moves in carries a "+"; libxcrypt, which Dovecot's
-- crypt() is, verifies such a hash (`doveadm pw -t`, tested). Until now the rule took
-- crypt's own alphabet only (./0-9A-Za-z), so `mailbook import --from postfixadmin`
-- refused those hashes and the mailboxes moved in with passwords nobody knew.
-- Characters libxcrypt refuses in a salt ("!", "*", ":", ";", "\", white space) stay
-- refused: Dovecot could never verify such a hash. Only the salt patterns change.
-- depends: 0091_record_map_changes

CREATE OR REPLACE FUNCTION public.password_hash_error(hash text) RETURNS text
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

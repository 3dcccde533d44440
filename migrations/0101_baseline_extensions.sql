-- pgcrypto gives crypt() and gen_salt('bf'): bcrypt hashes that Dovecot's BLF-CRYPT
-- scheme verifies. It lives in schema crypto, which nobody but mailowner may use: in
-- public its functions would be callable by every role that reads the tables, and
-- crypt() with a high cost is a CPU sink anyone could start. The SQL API calls it as
-- crypto.crypt() and crypto.gen_salt(). pgcrypto is a trusted extension (PostgreSQL 13+),
-- so mailowner, the database owner, may create it.
-- depends: 0100_baseline_hardening

CREATE SCHEMA crypto AUTHORIZATION mailowner;
REVOKE ALL ON SCHEMA crypto FROM PUBLIC;
COMMENT ON SCHEMA crypto IS 'pgcrypto, for the SQL API only: nobody but mailowner may use this schema';

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA crypto;

-- IF NOT EXISTS keeps a pgcrypto a superuser created elsewhere (the tutorial puts it in
-- public): say what to run rather than leave the API without it
DO $where$
BEGIN
    IF (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'pgcrypto')
       <> 'crypto'::regnamespace THEN
        RAISE EXCEPTION 'pgcrypto is installed outside schema crypto'
              USING ERRCODE = '55000',
                    HINT = 'as a superuser: ALTER EXTENSION pgcrypto SET SCHEMA crypto; then apply again';
    END IF;
END
$where$;

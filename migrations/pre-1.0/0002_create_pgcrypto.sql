-- pgcrypto provides crypt() and gen_salt('bf'): bcrypt hashes that Dovecot's BLF-CRYPT
-- scheme verifies. It is a trusted extension since PostgreSQL 13, so the database owner
-- may create it. The API calls it as public.crypt(), so it must live in public.
-- depends: 0001_harden_database

CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;

DO $where$
BEGIN
    IF (SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension
         WHERE extname = 'pgcrypto') <> 'public' THEN
        RAISE EXCEPTION 'pgcrypto is installed outside schema public'
              USING ERRCODE = '55000',
                    HINT = 'ALTER EXTENSION pgcrypto SET SCHEMA public, then apply again';
    END IF;
END
$where$;

-- Undo 0001_harden_database: give PUBLIC back what PostgreSQL grants a new database.

ALTER DEFAULT PRIVILEGES GRANT USAGE ON TYPES TO PUBLIC;
ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC;

REVOKE USAGE ON SCHEMA public FROM mailadmin, mailreader, mailauth;
GRANT USAGE ON SCHEMA public TO PUBLIC;
DO $v$
BEGIN
    IF current_setting('server_version_num')::int < 150000 THEN
        GRANT CREATE ON SCHEMA public TO PUBLIC;
    END IF;
END
$v$;

DO $db$
BEGIN
    EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM mailadmin, mailreader, mailauth',
                   current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', current_database());
END
$db$;

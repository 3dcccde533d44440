-- Table privileges, all in one place. Re-applied on every `migrate apply`: first every
-- grant on every table and view in public is taken back, then each role gets exactly
-- the list below, one object per line. Function grants sit below each function.
-- Nobody but mailowner may write: every change goes through the SQL API.

-- The database-level lockdown of migration 0001, asserted again: pg_dump without
-- --create carries no database grants, so a database restored from a dump starts open
-- to PUBLIC until this runs (`mailbook migrate apply` after pg_restore).
DO $db$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailadmin, mailreader, mailauth, mailquota, mailwebmail',
                   current_database());
    -- a customer's admin (0207): none yet while a pre-1.0 database is moved onto the baseline
    IF to_regclass('public.admin_scopes') IS NOT NULL THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO maildomainadmin', current_database());
    END IF;
    -- the DKIM signer (0209): none yet while a pre-1.0 database is moved onto the baseline
    IF to_regclass('public.dkim_keys') IS NOT NULL THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO maildkim', current_database());
    END IF;
END
$db$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, mailadmin, mailreader, mailauth, mailquota, mailwebmail;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, mailadmin, mailreader, mailauth, mailquota, mailwebmail;
DO $revoke$
BEGIN
    IF to_regrole('maildomainadmin') IS NOT NULL THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM maildomainadmin;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM maildomainadmin;
    END IF;
    IF to_regrole('maildkim') IS NOT NULL THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM maildkim;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM maildkim;
    END IF;
END
$revoke$;

-- mailadmin: provisioning front-ends and DBA accounts. Reads everything but hashes.
GRANT SELECT ON public.transports TO mailadmin;
GRANT SELECT ON public.aliases TO mailadmin;
GRANT SELECT ON public.mailboxes TO mailadmin;
GRANT SELECT ON public.settings TO mailadmin;
GRANT SELECT ON public.send_as TO mailadmin;
GRANT SELECT ON public.audit_log TO mailadmin;  -- `mailbook log`; nobody may write it
GRANT SELECT ON public.vacations TO mailadmin;
GRANT SELECT ON public.quota_usage TO mailadmin;
GRANT SELECT (email, realname, maildir, created, domain, quota_bytes, active, modified, disabled_services,
              quota_messages)
    ON public.users TO mailadmin;
-- the one write: `mailbook import` COPYs a batch here for import_batch() to check and
-- apply. The file's columns only: batch is always its default, the inserting
-- transaction, so nobody can slip rows into another admin's import (0028). No SELECT:
-- nobody reads another session's staged passwords.
GRANT INSERT (kind, address, destination, password, password_hash, realname, maildir, quota_bytes, transport,
              gid, active, quota_messages, services_off, max_mailboxes, max_aliases, max_quota_bytes,
              subject, body, starts, ends, days)
    ON public.import_staging TO mailadmin;

-- mailreader: Postfix (postfix-maps/*.cf) and `maps compile/follow`. No table at all:
-- every map calls a SECURITY DEFINER lookup function (sql/api/70_lookups.sql,
-- 75_compiled_maps.sql), each granted to it by EXECUTE. So a stolen mailreader password
-- gets what the maps answer (and the compiled tables on the Postfix host hold anyway:
-- addresses, maildirs, destinations, transports, send-as logins) and nothing else of the
-- tables: no hash, real name, quota, creation date, vacation or audit row.

-- mailauth: Dovecot passdb and userdb (dovecot/dovecot-sql.conf.ext). Needs the hashes.
GRANT SELECT (email, password, maildir, domain, quota_bytes, quota_messages, active, disabled_services)
    ON public.users TO mailauth;
GRANT SELECT (domain, gid, active, disabled_services) ON public.transports TO mailauth;
-- whether a vacation reply is due or to come: user_query answers sieve_before only then
-- (dovecot/dovecot-sql.conf.ext, 2.3); the reply itself comes through sieve_scripts
GRANT SELECT (email, ends) ON public.vacations TO mailauth;
-- the generated vacation scripts, for Pigeonhole's dict (dovecot/dovecot-dict-sieve.conf.ext);
-- the view reads the tables as its owner, and the helpers it calls run as the caller
GRANT SELECT ON public.sieve_scripts TO mailauth;
-- the same with a do-nothing script for every other mailbox, for Pigeonhole 2.4
-- (dovecot/2.4/dovecot-dict-sieve.conf.ext; migration 0204 says why). Not there yet while
-- a pre-1.0 database is moved onto the baseline: migrate apply grants it right after 0204.
DO $grant$
BEGIN
    IF to_regclass('public.sieve_delivery_scripts') IS NOT NULL THEN
        GRANT SELECT ON public.sieve_delivery_scripts TO mailauth;
    END IF;
END
$grant$;
GRANT EXECUTE ON FUNCTION public.vacation_script(text, text, integer, text[]) TO mailauth;
-- app passwords (0212): Dovecot's second passdb (dovecot/dovecot-sql-app-passwords.conf.ext)
-- looks one up by address and token and checks the hash itself; mailadmin reads all but
-- token and hash (app_passwords_list() is what a customer's admin reads)
DO $grant$
BEGIN
    IF to_regclass('public.app_passwords') IS NOT NULL THEN
        GRANT SELECT (email, token, hash, services) ON public.app_passwords TO mailauth;
        GRANT SELECT (email, name, services, created, last_used) ON public.app_passwords TO mailadmin;
    END IF;
END
$grant$;
GRANT EXECUTE ON FUNCTION public.sieve_string(text) TO mailauth;
-- login networks (0213): both passdb queries return them as allow_nets; mailadmin reads
-- them as it reads the rest of users but the hash
DO $grant$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = 'public.users'::regclass AND a.attname = 'login_networks' AND NOT a.attisdropped) THEN
        GRANT SELECT (login_networks) ON public.users TO mailauth;
        GRANT SELECT (login_networks) ON public.transports TO mailauth;
        GRANT SELECT (login_networks) ON public.users TO mailadmin;  -- transports: table-wide already
    END IF;
END
$grant$;
-- password expiry (0215): the main passdb query hands the password's date and both ages
-- to password_expiry_check(); mailadmin reads them as it reads the rest of users but the hash
DO $grant$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = 'public.users'::regclass AND a.attname = 'password_max_age' AND NOT a.attisdropped) THEN
        GRANT SELECT (password_changed, password_max_age) ON public.users TO mailauth;
        GRANT SELECT (password_max_age) ON public.transports TO mailauth;
        GRANT SELECT (password_changed, password_max_age) ON public.users TO mailadmin;  -- transports: table-wide already
    END IF;
END
$grant$;
-- renamed mailboxes (0216): user_query resolves a former address to its mailbox within
-- its window (LMTP delivery of mail Postfix accepted before the rename); mailadmin reads
-- them (no secret in them)
DO $grant$
BEGIN
    IF to_regclass('public.former_addresses') IS NOT NULL THEN
        GRANT SELECT (address, email, until) ON public.former_addresses TO mailauth;
        GRANT SELECT ON public.former_addresses TO mailadmin;
    END IF;
END
$grant$;

-- mailquota: Dovecot's quota_clone, through its dict proxy (dovecot/dovecot-dict-quota.conf.ext).
-- Writes the two counters of a mailbox's usage row and nothing else: its upsert
-- (INSERT ... ON CONFLICT (email) DO UPDATE SET bytes, messages) needs INSERT of the
-- three columns, UPDATE of the counters and SELECT of the key. It may insert a row only
-- for an existing mailbox (the foreign key), and reads no counter, limit or hash.
GRANT INSERT (email, bytes, messages) ON public.quota_usage TO mailquota;
GRANT UPDATE (bytes, messages) ON public.quota_usage TO mailquota;
GRANT SELECT (email) ON public.quota_usage TO mailquota;
-- The same dict server writes Dovecot's last_login plugin (migration 0210), as the same
-- role: a separate one would guard nothing, its password sitting in a file beside this
-- one, readable by the same group. The upsert (INSERT ... ON CONFLICT (email, service,
-- remote_ip) DO UPDATE SET login_epoch) needs INSERT of the four columns, UPDATE of the
-- epoch, SELECT of the key; the trigger that moves a login from a new address into the
-- row (as the writer) needs UPDATE of remote_ip. last_login itself is the trigger's.
-- mailadmin reads the rows (which service, which address).
DO $grant$
BEGIN
    IF to_regclass('public.last_logins') IS NOT NULL THEN
        GRANT INSERT (email, service, remote_ip, login_epoch) ON public.last_logins TO mailquota;
        GRANT UPDATE (remote_ip, login_epoch) ON public.last_logins TO mailquota;
        GRANT SELECT (email, service, remote_ip) ON public.last_logins TO mailquota;
        GRANT SELECT ON public.last_logins TO mailadmin;
    END IF;
END
$grant$;

-- mailwebmail: a webmail's password form. No table at all: it may EXECUTE
-- change_password() (sql/api/25_change_password.sql) and nothing else.

-- maildkim: OpenDKIM's KeyTable and SigningTable (`mailbook dkim install`, migration 0209).
-- The active keys, private ones included, through the view and nothing else: no table,
-- no function. mailadmin reads the public parts through dkim_keys_list() and may only
-- stage a key pair for add_dkim_key() (the key columns; batch is always its default,
-- the inserting transaction); nobody but mailowner reads dkim_keys or the staging table.
DO $grant$
BEGIN
    IF to_regclass('public.dkim_keys') IS NOT NULL THEN
        GRANT SELECT ON public.dkim_signing TO maildkim;
        GRANT INSERT (private_key, public_key) ON public.dkim_key_staging TO mailadmin;
    END IF;
END
$grant$;

-- maildomainadmin: a customer's admin (migration 0207, sql/api/35_scopes.sql). No table
-- and no view at all, admin_scopes included: it reads its mailboxes through
-- my_mailboxes() and its scope through domain_admins(), and may EXECUTE only the
-- functions that check its scope (granted below each). Nobody reads admin_scopes
-- directly: mailadmin, too, goes through domain_admins().
-- The one write, as mailadmin's: `mailbook import` COPYs its file into import_staging
-- (the same columns; no SELECT), and import_batch() refuses the whole batch unless every
-- domain it names is the admin's.
DO $grant$
BEGIN
    IF to_regclass('public.admin_scopes') IS NOT NULL THEN
        GRANT INSERT (kind, address, destination, password, password_hash, realname, maildir, quota_bytes, transport,
                      gid, active, quota_messages, services_off, max_mailboxes, max_aliases, max_quota_bytes,
                      subject, body, starts, ends, days)
            ON public.import_staging TO maildomainadmin;
    END IF;
END
$grant$;

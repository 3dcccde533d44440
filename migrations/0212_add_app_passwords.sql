-- App passwords (issue 33, item 1): a mailbox may have several named, revocable
-- passwords, each valid for chosen services only, stored hashed like the main one.
-- * Dovecot asks a second passdb (dovecot/dovecot-sql-app-passwords.conf.ext) only after
--   the main password failed: the main login path runs exactly the query it ran before.
-- * Dovecot refuses a passdb query that returns more than one row, so each app password
--   carries its own lookup key: its first 8 characters (token, not secret) are looked up
--   with the address, and Dovecot checks the whole password against that one row's hash.
--   Only the token ever appears in a statement's text; add_app_password() generates the
--   password in SQL and returns it once, so no secret travels into the server at all.
-- * settings.app_password_services: the services for which the main password is refused
--   (a site that requires app passwords for IMAP, POP3 and SMTP); empty by default.
-- depends: 0211_record_vacation_auth_cache_changes

CREATE TABLE public.app_passwords (
    email     text NOT NULL
              CONSTRAINT app_passwords_mailbox REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    name      text NOT NULL
              CONSTRAINT app_passwords_name_printable CHECK (name ~ '^[[:alnum:]][[:alnum:] ._@+-]{0,63}$'),
    token     text NOT NULL
              CONSTRAINT app_passwords_token_format CHECK (token ~ '^[a-z2-9]{8}$'),
    hash      text NOT NULL
              CONSTRAINT app_passwords_hash_bcrypt CHECK (hash LIKE '{BLF-CRYPT}$2a$%'),
    services  text[] NOT NULL
              CONSTRAINT app_passwords_services_known
              CHECK (services <> '{}' AND services <@ ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']),
    created   timestamptz NOT NULL DEFAULT now(),
    last_used timestamptz,
    CONSTRAINT app_passwords_pkey PRIMARY KEY (email, name),
    CONSTRAINT app_passwords_token_unique UNIQUE (email, token)
);
ALTER TABLE public.app_passwords ALTER COLUMN hash SET STATISTICS 0;  -- no hash samples in pg_statistic
COMMENT ON TABLE public.app_passwords IS
'Named, revocable passwords of a mailbox, each for chosen services (Dovecot''s second passdb, as mailauth). Change them with add_app_password() and revoke_app_password(); list them with app_passwords_list() (never the hashes).';
COMMENT ON COLUMN public.app_passwords.email IS 'The mailbox; removing it removes its app passwords.';
COMMENT ON COLUMN public.app_passwords.name IS 'What the user calls it (a device, a program), unique per mailbox.';
COMMENT ON COLUMN public.app_passwords.token IS 'The password''s first 8 characters: Dovecot''s lookup key (not secret; the rest is).';
COMMENT ON COLUMN public.app_passwords.hash IS 'bcrypt of the whole password, {BLF-CRYPT}$2a$... Read by mailowner and mailauth only.';
COMMENT ON COLUMN public.app_passwords.services IS 'The services it logs in to: imap, pop3, smtp (Postfix''s SASL), submission, sieve.';
COMMENT ON COLUMN public.app_passwords.created IS 'When it was added.';
COMMENT ON COLUMN public.app_passwords.last_used IS 'Not recorded yet (NULL): the last-login record is per mailbox and service.';

ALTER TABLE public.settings
    ADD COLUMN app_password_services text[] NOT NULL DEFAULT '{}'
        CONSTRAINT settings_app_password_services_known
        CHECK (app_password_services <@ ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']);
COMMENT ON COLUMN public.settings.app_password_services IS
'Services for which Dovecot refuses the main password (only app passwords log in), e.g. {imap,pop3,smtp,submission}; default none.';

-- audited by key (never the hash: audit_update logs the names of changed columns only)
CREATE TRIGGER audit_insert AFTER INSERT ON public.app_passwords
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email', 'name');
CREATE TRIGGER audit_delete AFTER DELETE ON public.app_passwords
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email', 'name');
CREATE TRIGGER audit_update AFTER UPDATE ON public.app_passwords
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('email', 'name');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.app_passwords
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- `mailbook dovecot follow` flushes the mailbox's cached logins when one of its app
-- passwords comes or goes (a revoked one must stop working at once, like an old password)
CREATE FUNCTION public.app_passwords_auth_cache_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT n.email FROM new_rows n));
    ELSE
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT o.email FROM old_rows o));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.app_passwords_auth_cache_changes() IS 'Trigger: an app password added, changed or revoked (its mailbox''s address): Dovecot''s cached logins of that mailbox are flushed by `mailbook dovecot follow`.';
CREATE TRIGGER app_passwords_auth_cache_changes_insert AFTER INSERT ON public.app_passwords
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.app_passwords_auth_cache_changes();
CREATE TRIGGER app_passwords_auth_cache_changes_delete AFTER DELETE ON public.app_passwords
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.app_passwords_auth_cache_changes();
CREATE TRIGGER app_passwords_auth_cache_changes_update AFTER UPDATE ON public.app_passwords
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.app_passwords_auth_cache_changes();
CREATE TRIGGER app_passwords_auth_cache_changes_truncate AFTER TRUNCATE ON public.app_passwords
    FOR EACH STATEMENT EXECUTE FUNCTION public.truncate_auth_cache_changes();

-- Password expiry (issue 33, item 3): a maximum password age per domain or mailbox;
-- past it, Dovecot refuses logins to the chosen services with a reason the client shows
-- (its nologin and reason passdb fields, after the password matched), except from the
-- webmail's networks, where the user changes it (change_password()).
-- * users.password_changed: when the password was last set. A trigger sets it whenever
--   the password column changes (set_password, change_password, an import's or the
--   owner's UPDATE) and a new row takes its default, now() (add_mailbox,
--   add_mailbox_hashed, the import), so no path can forget it. A restored mailbox
--   (restore_mailbox()) keeps the date it had: its password did not change.
-- * Existing mailboxes get the time of this migration, not their creation time: nothing
--   says when their passwords were set (set_password and imports since creation are not
--   recorded in users; the audit log may be pruned, and imported hashes predate it). A
--   creation time would lock out, the moment a maximum age is set, every old mailbox
--   whose user did change the password; the migration time gives everyone one full
--   period from the upgrade.
-- * password_max_age, in days, per domain (transports) and per mailbox (users): the
--   mailbox's wins; NULL on a mailbox: its domain's; 0 on a mailbox: never, whatever its
--   domain says; NULL on a domain: never (the default: nothing expires until set).
-- * settings.password_expiry_services: the services it applies to (default imap, pop3,
--   smtp, submission, sieve); settings.password_expiry_exempt_networks: networks whose
--   logins it does not apply to (the webmail's: default this host, 127.0.0.1 and ::1);
--   settings.password_expiry_reason: what the client is told.
-- App passwords (0212) are not subject to it: each is generated (120 bits), revocable
-- on its own, and never typed by a person; the main password's age says nothing of them.
-- depends: 0214_add_mailbox_grace

ALTER TABLE public.users
    ADD COLUMN password_changed timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN password_max_age integer
        CONSTRAINT users_password_max_age_range CHECK (password_max_age BETWEEN 0 AND 36500);
COMMENT ON COLUMN public.users.password_changed IS
'When the password was last set (a trigger sets it whenever the password changes); existing mailboxes: the time of migration 0215.';
COMMENT ON COLUMN public.users.password_max_age IS
'Maximum password age in days, replacing its domain''s; 0: never expires; NULL: its domain''s. Set with set_password_max_age().';

ALTER TABLE public.transports
    ADD COLUMN password_max_age integer
        CONSTRAINT transports_password_max_age_range CHECK (password_max_age BETWEEN 1 AND 36500);
COMMENT ON COLUMN public.transports.password_max_age IS
'Maximum password age in days of the domain''s mailboxes without one of their own; NULL: never expires. Set with set_password_max_age().';

ALTER TABLE public.settings
    ADD COLUMN password_expiry_services text[] NOT NULL DEFAULT ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']
        CONSTRAINT settings_password_expiry_services_known
        CHECK (password_expiry_services <@ ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']),
    ADD COLUMN password_expiry_exempt_networks cidr[] NOT NULL DEFAULT ARRAY['127.0.0.1/32', '::1/128']::cidr[]
        CONSTRAINT settings_password_expiry_exempt_networks_listed
        CHECK (cardinality(password_expiry_exempt_networks) <= 64 AND array_position(password_expiry_exempt_networks, NULL) IS NULL),
    ADD COLUMN password_expiry_reason text NOT NULL DEFAULT 'Your password has expired: change it in webmail.'
        CONSTRAINT settings_password_expiry_reason_printable CHECK (password_expiry_reason ~ '^[[:print:]]{1,200}$');
COMMENT ON COLUMN public.settings.password_expiry_services IS
'Services for which Dovecot refuses an expired main password (users/transports.password_max_age); default imap, pop3, smtp, submission, sieve.';
COMMENT ON COLUMN public.settings.password_expiry_exempt_networks IS
'Client networks whose logins an expired password does not stop: the webmail''s, where users change it (default this host: 127.0.0.1/32, ::1/128).';
COMMENT ON COLUMN public.settings.password_expiry_reason IS
'What Dovecot tells a client whose password has expired (the passdb reason field; IMAP, POP3 and ManageSieve show it).';

-- password_changed follows the password, whichever path sets it. A new row takes the
-- column's default (a restored one keeps its saved date: insert_json_rows names it): no
-- INSERT trigger, which cost a 1,000,000-mailbox import about 3 s (a PL/pgSQL call a row).
-- The WHEN clause keeps even that call off updates that leave the password alone.
CREATE FUNCTION public.users_password_changed() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.password_changed := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.users_password_changed() IS 'Trigger: users.password_changed is now() when the password changes.';
CREATE TRIGGER users_password_changed BEFORE UPDATE OF password ON public.users
    FOR EACH ROW WHEN (NEW.password IS DISTINCT FROM OLD.password)
    EXECUTE FUNCTION public.users_password_changed();

-- the audit triggers of users and transports name password_max_age when it changes (as
-- any column); `mailbook dovecot follow` flushes the cached logins it affects
CREATE FUNCTION public.password_max_age_auth_cache_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM public.record_auth_cache_changes(NULL, ARRAY[NEW.email]);
    ELSE
        PERFORM public.record_auth_cache_changes(ARRAY[NEW.domain], NULL);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.password_max_age_auth_cache_changes() IS 'Trigger: a mailbox''s or domain''s password_max_age changed: Dovecot''s cached logins of that mailbox or domain are flushed by `mailbook dovecot follow`.';
CREATE TRIGGER users_password_max_age_auth_cache_changes AFTER UPDATE OF password_max_age ON public.users
    FOR EACH ROW WHEN (OLD.password_max_age IS DISTINCT FROM NEW.password_max_age)
    EXECUTE FUNCTION public.password_max_age_auth_cache_changes();
CREATE TRIGGER transports_password_max_age_auth_cache_changes AFTER UPDATE OF password_max_age ON public.transports
    FOR EACH ROW WHEN (OLD.password_max_age IS DISTINCT FROM NEW.password_max_age)
    EXECUTE FUNCTION public.password_max_age_auth_cache_changes();

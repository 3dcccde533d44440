-- Last login per mailbox and service (issue 33, item 2): Dovecot's last_login plugin writes
-- it through the same dict server and role as quota_clone (mailquota), on 2.3 and 2.4.
-- * The dict key carries the service, the client's address and the user
--   (last-login/<service>/<ip>/<user>); Dovecot 2.3 and 2.4.1 write one value per key
--   (2.4.5's last_login_dict_fields is too new), so the address can only travel as a key
--   field, and Dovecot's upsert names it in ON CONFLICT (email, service, remote_ip): the
--   unique constraint last_logins_arbiter exists for that inference alone. Bounded all the
--   same: the primary key is (email, service), and the trigger below moves a login from a
--   new address into the existing row, so there is one row per mailbox and service, at
--   most four per mailbox (the services whose logins are recorded), only for mailboxes
--   that exist (the foreign key; a removed mailbox takes its rows along).
-- * login_epoch is Dovecot's value (seconds since 1970); last_login is the time shown,
--   never later than the database's clock: a hostile writer can claim "logged in now", as
--   a real login does, but cannot keep a mailbox off `mailbox stale` with a future date.
-- * A refused write (23503 unknown mailbox, 23514, 22P02 bad address) fails only
--   Dovecot's dict commit: it logs it and the login goes on.
-- depends: 0209_add_dkim_keys

CREATE TABLE public.last_logins (
    email       text NOT NULL
                CONSTRAINT last_logins_mailbox REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    service     text NOT NULL
                CONSTRAINT last_logins_service_known CHECK (service IN ('imap', 'pop3', 'submission', 'sieve')),
    remote_ip   inet,
    login_epoch bigint NOT NULL
                CONSTRAINT last_logins_epoch_range CHECK (login_epoch BETWEEN 946684800 AND 9007199254),
    last_login  timestamptz NOT NULL,
    CONSTRAINT last_logins_pkey PRIMARY KEY (email, service),
    CONSTRAINT last_logins_arbiter UNIQUE (email, service, remote_ip)
);
COMMENT ON TABLE public.last_logins IS
'The last successful login per mailbox and service, written by Dovecot''s last_login plugin (role mailquota, through the dict server). One row per mailbox and service. Read it through the mailboxes view (last_login) or `mailbook mailbox stale`.';
COMMENT ON COLUMN public.last_logins.email IS 'The mailbox; its rows go with it.';
COMMENT ON COLUMN public.last_logins.service IS 'Dovecot''s service: imap, pop3, submission or sieve (ManageSieve).';
COMMENT ON COLUMN public.last_logins.remote_ip IS 'The client''s address at that login, as Dovecot saw it.';
COMMENT ON COLUMN public.last_logins.login_epoch IS 'The login time Dovecot wrote, in seconds since 1970 (2000-01-01 to 2^53 ms).';
COMMENT ON COLUMN public.last_logins.last_login IS 'The login time, never later than the database''s clock at the write.';

-- last_logins_written() -> trigger
-- Caller: the BEFORE INSERT and BEFORE UPDATE triggers of last_logins (Dovecot's writes as
-- mailquota). Runs as the writer (it lives in this migration, not in the API, which is
-- dropped and re-created on every migrate). Sets last_login from login_epoch, capped at
-- now(); on INSERT, a row for the same mailbox and service from another address is
-- updated instead (the INSERT is skipped), so the table keeps one row per service.
CREATE FUNCTION public.last_logins_written() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.last_login := least(to_timestamp(NEW.login_epoch), now());
    IF TG_OP = 'INSERT' THEN
        UPDATE public.last_logins l
           SET remote_ip = NEW.remote_ip, login_epoch = NEW.login_epoch
         WHERE l.email = NEW.email AND l.service = NEW.service
           AND l.remote_ip IS DISTINCT FROM NEW.remote_ip;
        IF FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.last_logins_written() IS
'Trigger: last_login from Dovecot''s login_epoch (never in the future); a login from a new address replaces the row of that mailbox and service.';
CREATE TRIGGER last_logins_written BEFORE INSERT OR UPDATE ON public.last_logins
    FOR EACH ROW EXECUTE FUNCTION public.last_logins_written();

-- the listing gains the newest login over all services (NULL: never logged in since
-- recording began), at the end: my_mailboxes() returns the view's row type
CREATE OR REPLACE VIEW public.mailboxes AS
SELECT u.email, u.domain, u.realname, u.maildir, u.quota_bytes, u.active, u.created, u.modified,
       u.disabled_services, u.quota_messages, q.bytes AS used_bytes, q.messages AS used_messages,
       (SELECT max(l.last_login) FROM public.last_logins l WHERE l.email = u.email) AS last_login
  FROM public.users u LEFT JOIN public.quota_usage q ON q.email = u.email;
COMMENT ON COLUMN public.mailboxes.last_login IS
'The newest login over all services, as Dovecot recorded it (NULL: none recorded).';

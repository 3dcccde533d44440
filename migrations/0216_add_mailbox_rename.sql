-- Rename a mailbox keeping everything (issue 33, item 5): rename_mailbox() (sql/api/41_rename.sql)
-- changes users.email in place, and what references it follows by its foreign keys'
-- ON UPDATE CASCADE. This table covers the window a rename leaves behind:
-- * Postfix resolves a recipient when it accepts a message (virtual_mailbox_maps at RCPT,
--   virtual_alias_maps in cleanup). A message accepted for the old address before the
--   rename but delivered after it (in the active queue, deferred, in flight to LMTP)
--   reaches Dovecot's LMTP as RCPT TO:<old>. If Dovecot's user_query no longer found the
--   old address, LMTP would answer 550 and Postfix would bounce the message.
-- * So each former address stays here, pointing at its mailbox (a foreign key that follows
--   a second rename, and goes with the mailbox), until `until`: 5 days, Postfix's default
--   maximal_queue_lifetime, after which Postfix itself would have given up on the message.
--   Dovecot's user_query (dovecot/dovecot-sql.conf.ext) resolves a former address to its
--   mailbox and answers the mailbox's address as `user`, so LMTP delivers into that
--   mailbox, under its new name (quota, Sieve, last login). Nothing else reads it: Postfix
--   refuses new mail to the old address at RCPT (unless it is kept as an alias), and a
--   login with the old address fails (password_query does not look here).
-- * Meanwhile no other mailbox or alias may take a former address (statement triggers on
--   users and aliases, 23505), so queued mail never lands in someone else's mailbox. An
--   alias to the renamed mailbox itself may (rename_mailbox(old, new, true) keeps the old
--   address as one). Rows past their window are ignored, and deleted by the next rename.
-- depends: 0215_add_password_expiry

CREATE TABLE public.former_addresses (
    address    text PRIMARY KEY
               CONSTRAINT former_addresses_address_valid CHECK (public.address_error(address) IS NULL),
    email      text NOT NULL
               CONSTRAINT former_addresses_mailbox REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    renamed    timestamptz NOT NULL DEFAULT now(),
    renamed_by name NOT NULL DEFAULT session_user,
    until      timestamptz NOT NULL,
    CONSTRAINT former_addresses_window CHECK (until > renamed),
    CONSTRAINT former_addresses_not_current CHECK (address <> email)
);
-- the foreign key's cascades (a rename or removal of the mailbox)
CREATE INDEX former_addresses_email_idx ON public.former_addresses (email);
COMMENT ON TABLE public.former_addresses IS
'Former addresses of renamed mailboxes (rename_mailbox()), for the window in which Postfix may still hand mail accepted for them to Dovecot''s LMTP: user_query resolves them to the mailbox until "until". No other mailbox or alias may take one meanwhile.';
COMMENT ON COLUMN public.former_addresses.address IS 'The address the mailbox had.';
COMMENT ON COLUMN public.former_addresses.email IS 'The mailbox it now is (follows a later rename; goes with the mailbox).';
COMMENT ON COLUMN public.former_addresses.renamed IS 'When it was renamed.';
COMMENT ON COLUMN public.former_addresses.renamed_by IS 'The login that renamed it (session_user).';
COMMENT ON COLUMN public.former_addresses.until IS 'The end of the window (5 days, Postfix''s default maximal_queue_lifetime): resolved and reserved before, ignored after.';

CREATE TRIGGER audit_insert AFTER INSERT ON public.former_addresses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('address', 'email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.former_addresses
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('address', 'email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.former_addresses
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('address', 'email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.former_addresses
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- refuse_former_address_reuse(): AFTER INSERT / UPDATE ... FOR EACH STATEMENT on users
-- (the address) and aliases (the alias address, unless it forwards to the very mailbox
-- that had it). Raises 23505 naming the address, its mailbox and the end of the window.
CREATE FUNCTION public.refuse_former_address_reuse() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    IF NOT EXISTS (SELECT FROM public.former_addresses) THEN  -- usually empty: imports pay nothing
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'users' THEN
        SELECT f.address, f.email, f.until INTO bad
          FROM new_rows n JOIN public.former_addresses f ON f.address = n.email
         WHERE f.until > now()
         LIMIT 1;
    ELSE
        SELECT f.address, f.email, f.until INTO bad
          FROM new_rows n JOIN public.former_addresses f ON f.address = n.alias
         WHERE f.until > now() AND n.email <> f.email
         LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '% was the address of mailbox %, renamed: mail queued for it is delivered there until %',
              public.quoted(bad.address), public.quoted(bad.email),
              to_char(bad.until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
              USING ERRCODE = '23505',
                    HINT = format('choose another address, or keep it as an alias of %s', bad.email);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.refuse_former_address_reuse() IS 'Trigger: no mailbox or alias (but one to the renamed mailbox) takes a former address within its window.';

CREATE TRIGGER users_former_apart AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_former_address_reuse();
CREATE TRIGGER users_former_apart_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_former_address_reuse();
CREATE TRIGGER aliases_former_apart AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_former_address_reuse();
CREATE TRIGGER aliases_former_apart_on_update AFTER UPDATE ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_former_address_reuse();

-- Login networks (issue 33, item 4): the networks a mailbox may log in from, set per
-- mailbox or per domain, enforced by Dovecot's allow_nets passdb field (both passdbs:
-- the main password's and the app passwords'; Postfix's SASL asks the same passdbs).
-- * cidr[], not text: PostgreSQL parses each network, and cidr refuses host bits set
--   (192.0.2.1/24 is a typo for 192.0.2.0/24 or 192.0.2.1/32, and guessing either one
--   could lock a user out or let a whole network in). A bare address is its /32 or /128.
-- * NULL: from anywhere (the default; Dovecot ignores a NULL field). An empty list is
--   refused: Dovecot would refuse every login (no network matches), which is what
--   disabling the mailbox says plainly.
-- * A mailbox's own list, if set, replaces its domain's (not added to it): a domain may
--   say "the office only" and one travelling mailbox "the office and the VPN".
-- depends: 0212_add_app_passwords

ALTER TABLE public.users
    ADD COLUMN login_networks cidr[]
        CONSTRAINT users_login_networks_listed
        CHECK (cardinality(login_networks) BETWEEN 1 AND 64 AND array_position(login_networks, NULL) IS NULL);
COMMENT ON COLUMN public.users.login_networks IS
'Networks the mailbox may log in from (Dovecot''s allow_nets), replacing its domain''s list; NULL: its domain''s list, or anywhere. Set with set_login_networks().';

ALTER TABLE public.transports
    ADD COLUMN login_networks cidr[]
        CONSTRAINT transports_login_networks_listed
        CHECK (cardinality(login_networks) BETWEEN 1 AND 64 AND array_position(login_networks, NULL) IS NULL);
COMMENT ON COLUMN public.transports.login_networks IS
'Networks the domain''s mailboxes may log in from (Dovecot''s allow_nets) unless a mailbox has its own list; NULL: anywhere. Set with set_login_networks().';

-- the audit triggers of users and transports name login_networks when it changes (as any
-- column); `mailbook dovecot follow` flushes the cached logins it affects: Dovecot checks
-- allow_nets on every login, but from its cache the old list until then
CREATE FUNCTION public.login_networks_auth_cache_changes() RETURNS trigger
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
COMMENT ON FUNCTION public.login_networks_auth_cache_changes() IS 'Trigger: a mailbox''s or domain''s login_networks changed: Dovecot''s cached logins of that mailbox or domain are flushed by `mailbook dovecot follow`.';
-- row triggers: transition tables cannot go with a column list, and few rows change at once
CREATE TRIGGER users_login_networks_auth_cache_changes AFTER UPDATE OF login_networks ON public.users
    FOR EACH ROW WHEN (OLD.login_networks IS DISTINCT FROM NEW.login_networks)
    EXECUTE FUNCTION public.login_networks_auth_cache_changes();
CREATE TRIGGER transports_login_networks_auth_cache_changes AFTER UPDATE OF login_networks ON public.transports
    FOR EACH ROW WHEN (OLD.login_networks IS DISTINCT FROM NEW.login_networks)
    EXECUTE FUNCTION public.login_networks_auth_cache_changes();

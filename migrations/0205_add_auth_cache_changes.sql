-- Dovecot's auth cache (auth_cache_ttl 900 s, as `mailbook dovecot install` ships it)
-- answers from what it read last for up to the ttl: a quota raise, a disabled mailbox
-- or service, a new password took up to 15 minutes (issue 31). `mailbook dovecot follow`
-- (mailbook/authcache.py) flushes exactly the users whose cached answers a committed
-- change makes stale (`doveadm auth cache flush USER...`), within seconds, and leaves
-- the rest of the cache (all Dovecot has during an outage) alone. It learns which from
-- this record, like `maps follow` from map_changes (0112): every statement that changes
-- what Dovecot's queries read (dovecot/dovecot-sql.conf.ext, dovecot/2.4/...) records,
-- in the same transaction, tagged with its transaction id:
-- * users, old and new: its address, when a row is added or removed (a negative cache
--   entry, auth_cache_negative_ttl, for an address about to exist) or one of email,
--   password, active, disabled_services, maildir, quota_bytes, quota_messages changed;
-- * transports: the domain (every mailbox of it, read when the follower asks), when
--   domain, active, disabled_services or gid changed; a domain's INSERT and DELETE
--   change no mailbox (a domain is removed only after or with its mailboxes, which
--   record themselves);
-- * TRUNCATE of either: NULL, NULL (every user).
-- Nothing for realname, created, modified (users), transport, alias_of, max_*,
-- created, modified (transports), nor any other table: Dovecot's lookups do not read them.
-- A statement that records a row notifies channel mailbook_auth, without a payload
-- (LISTEN needs no privilege: other roles learn only that something changed).
-- auth_cache_changed_users() and prune_auth_cache_changes() (sql/api/77_auth_cache.sql)
-- read and prune it; tests/pgtap/17_auth_cache_changes.sql holds the list.
-- depends: 0204_add_sieve_delivery_scripts

CREATE TABLE public.auth_cache_changes (
    xid        xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    domain     text,  -- NULL: every user (a TRUNCATE)
    email      text,  -- NULL: every mailbox of domain
    changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.auth_cache_changes IS
    'Mailboxes and domains whose answers in Dovecot''s auth cache a transaction made stale, by transaction id (written by triggers; read by `mailbook dovecot follow` through auth_cache_changed_users())';
COMMENT ON COLUMN public.auth_cache_changes.xid IS 'The changing transaction: a follower takes the ones its last snapshot did not see.';
COMMENT ON COLUMN public.auth_cache_changes.domain IS 'The domain of email, or a domain whose mailboxes all changed (email NULL); NULL: every mailbox (a TRUNCATE).';
COMMENT ON COLUMN public.auth_cache_changes.email IS 'A mailbox whose password, state, services, maildir or quota changed, or that was added or removed; NULL: every mailbox of domain.';
COMMENT ON COLUMN public.auth_cache_changes.changed_at IS 'When, for pruning.';
CREATE INDEX auth_cache_changes_xid_idx ON public.auth_cache_changes (xid);
CREATE INDEX auth_cache_changes_changed_at_idx ON public.auth_cache_changes (changed_at);

-- One row: the newest transaction whose rows prune_auth_cache_changes() deleted. A
-- follower whose last snapshot's xmin is not above it may have missed a change, and
-- flushes the whole cache instead (while PostgreSQL answers, so the cache refills).
CREATE TABLE public.auth_cache_changes_horizon (
    one        boolean PRIMARY KEY DEFAULT true CONSTRAINT auth_cache_changes_horizon_one_row CHECK (one),
    pruned_xid xid8,
    pruned_at  timestamptz
);
INSERT INTO public.auth_cache_changes_horizon DEFAULT VALUES;
COMMENT ON TABLE public.auth_cache_changes_horizon IS
    'The newest transaction whose auth_cache_changes rows were pruned (one row)';
COMMENT ON COLUMN public.auth_cache_changes_horizon.one IS 'Always true: the table holds one row.';
COMMENT ON COLUMN public.auth_cache_changes_horizon.pruned_xid IS 'The newest transaction whose rows were deleted; NULL: none yet.';
COMMENT ON COLUMN public.auth_cache_changes_horizon.pruned_at IS 'When the last prune that deleted rows ran.';

-- record_auth_cache_changes(domains, emails) -> void: one row per domain (every mailbox)
-- and per address, and, if any, a notification on mailbook_auth (delivered at commit,
-- once per transaction).
CREATE FUNCTION public.record_auth_cache_changes(domains text[], emails text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n_domains bigint;
    n_emails bigint;
BEGIN
    INSERT INTO public.auth_cache_changes (domain)
    SELECT DISTINCT d.domain FROM unnest(domains) d(domain) WHERE d.domain IS NOT NULL;
    GET DIAGNOSTICS n_domains = ROW_COUNT;
    INSERT INTO public.auth_cache_changes (domain, email)
    SELECT DISTINCT split_part(e.email, '@', 2), e.email FROM unnest(emails) e(email) WHERE e.email IS NOT NULL;
    GET DIAGNOSTICS n_emails = ROW_COUNT;
    IF n_domains + n_emails > 0 THEN
        PERFORM pg_catalog.pg_notify('mailbook_auth', '');
    END IF;
END
$$;

CREATE FUNCTION public.users_auth_cache_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT n.email FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT o.email FROM old_rows o));
    ELSE  -- the rows whose Dovecot columns changed, old and new
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT c.email FROM (
            (SELECT o.email, o.password, o.active, o.disabled_services, o.maildir, o.quota_bytes, o.quota_messages
               FROM old_rows o
             EXCEPT
             SELECT n.email, n.password, n.active, n.disabled_services, n.maildir, n.quota_bytes, n.quota_messages
               FROM new_rows n)
            UNION
            (SELECT n.email, n.password, n.active, n.disabled_services, n.maildir, n.quota_bytes, n.quota_messages
               FROM new_rows n
             EXCEPT
             SELECT o.email, o.password, o.active, o.disabled_services, o.maildir, o.quota_bytes, o.quota_messages
               FROM old_rows o)) c));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.transports_auth_cache_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM public.record_auth_cache_changes(ARRAY(SELECT c.domain FROM (
        (SELECT o.domain, o.active, o.disabled_services, o.gid FROM old_rows o
         EXCEPT SELECT n.domain, n.active, n.disabled_services, n.gid FROM new_rows n)
        UNION
        (SELECT n.domain, n.active, n.disabled_services, n.gid FROM new_rows n
         EXCEPT SELECT o.domain, o.active, o.disabled_services, o.gid FROM old_rows o)) c), NULL);
    RETURN NULL;
END
$$;

CREATE FUNCTION public.truncate_auth_cache_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.auth_cache_changes (domain) VALUES (NULL);
    PERFORM pg_catalog.pg_notify('mailbook_auth', '');
    RETURN NULL;
END
$$;

-- transition tables allow one event per trigger
CREATE TRIGGER users_auth_cache_changes_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.users_auth_cache_changes();
CREATE TRIGGER users_auth_cache_changes_update AFTER UPDATE ON public.users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.users_auth_cache_changes();
CREATE TRIGGER users_auth_cache_changes_delete AFTER DELETE ON public.users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.users_auth_cache_changes();
CREATE TRIGGER users_auth_cache_changes_truncate AFTER TRUNCATE ON public.users
    FOR EACH STATEMENT EXECUTE FUNCTION public.truncate_auth_cache_changes();
CREATE TRIGGER transports_auth_cache_changes_update AFTER UPDATE ON public.transports
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.transports_auth_cache_changes();
CREATE TRIGGER transports_auth_cache_changes_truncate AFTER TRUNCATE ON public.transports
    FOR EACH STATEMENT EXECUTE FUNCTION public.truncate_auth_cache_changes();

COMMENT ON FUNCTION public.record_auth_cache_changes(text[], text[]) IS 'Records domains (every mailbox) and addresses in auth_cache_changes and, if it recorded any, notifies mailbook_auth; called by the triggers below.';
COMMENT ON FUNCTION public.users_auth_cache_changes() IS 'Trigger: a mailbox added or removed, or whose email, password, active, disabled_services, maildir, quota_bytes or quota_messages changed (old and new address).';
COMMENT ON FUNCTION public.transports_auth_cache_changes() IS 'Trigger: a domain whose domain, active, disabled_services or gid changed (every mailbox of it).';
COMMENT ON FUNCTION public.truncate_auth_cache_changes() IS 'Trigger: a TRUNCATE records every mailbox (NULL, NULL).';

-- `mailbook maps follow` keeps the compiled lmdb: tables current. It needs to know which
-- keys may have changed since the snapshot it last applied, durably (across a restart of
-- either side) and without writing anything itself (it connects as mailreader). So every
-- statement that changes users, aliases, transports or send_as records, in the same
-- transaction, the DOMAINS whose compiled keys it may change, tagged with its transaction
-- id; the follower asks for the rows its last snapshot did not see yet
-- (compiled_map_changes() in sql/api/75_compiled_maps.sql) and recomputes the keys of
-- those domains only. A key's domain is the part after "@", or the key itself for a
-- domain key (compiled_map_rows' header says which keys there are).
--
-- Which domains, from the rules in sql/api/75_compiled_maps.sql:
-- * a row's own domain (users.domain, aliases.domain, the address's domain of send_as,
--   transports.domain), old and new;
-- * a mailbox (users) also decides the keys of the aliases that reach it and of the
--   send-as addresses it holds (sender-login: an alias or grant counts only if its
--   mailbox is active), which may be in other domains;
-- * a domain (transports) also decides the sender-login keys of the send-as addresses
--   its mailboxes hold (a grant counts only if the login's domain is active), and its
--   alias_of target, old and new (recorded though no key of the target depends on it:
--   cheap, and safe if a rule ever comes to);
-- * every domain above also changes the keys of its alias domains (local@alias keys
--   repeat the target's), added last.
-- TRUNCATE cannot tell: it records NULL, which means every domain.
-- tests/test_maps_follow.py proves the list with random provisioning sequences.
-- The trigger functions are plain (SECURITY INVOKER): only mailowner writes these tables.
-- depends: 0111_baseline_vacations

CREATE TABLE public.map_changes (
    xid        xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    domain     text,  -- NULL: every domain (a TRUNCATE)
    changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.map_changes IS
    'Domains whose compiled map keys a transaction may have changed, by transaction id (written by triggers; read by `mailbook maps follow` through compiled_map_changes())';
COMMENT ON COLUMN public.map_changes.xid IS 'The changing transaction: a follower takes the ones its last snapshot did not see.';
COMMENT ON COLUMN public.map_changes.domain IS 'A domain whose keys may have changed; NULL: every domain (a TRUNCATE).';
COMMENT ON COLUMN public.map_changes.changed_at IS 'When, for doctor''s lag and for pruning.';
-- the follower reads the transactions from its last snapshot's xmin on
CREATE INDEX map_changes_xid_idx ON public.map_changes (xid);

-- One row: the newest transaction id that prune_map_changes() has deleted rows of. A
-- follower whose last snapshot's xmin is not above it may have lost changes, and
-- compiles in full instead.
CREATE TABLE public.map_changes_horizon (
    one        boolean PRIMARY KEY DEFAULT true CONSTRAINT map_changes_horizon_one_row CHECK (one),
    pruned_xid xid8,
    pruned_at  timestamptz
);
INSERT INTO public.map_changes_horizon DEFAULT VALUES;
COMMENT ON TABLE public.map_changes_horizon IS
    'The newest transaction whose map_changes rows were pruned (one row)';

COMMENT ON COLUMN public.map_changes_horizon.one IS 'Always true: the table holds one row.';
COMMENT ON COLUMN public.map_changes_horizon.pruned_xid IS 'The newest transaction whose rows were deleted; NULL: none yet.';
COMMENT ON COLUMN public.map_changes_horizon.pruned_at IS 'When the last prune ran.';

-- the grants of a login's domain, the keys of one domain of send_as
CREATE INDEX send_as_address_domain_idx ON public.send_as (split_part(address, '@', 2));

-- record_map_changes(domains) -> void: the domains, their alias domains, and a
-- notification on channel mailbook_maps (delivered at commit, once per transaction).
CREATE FUNCTION public.record_map_changes(domains text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.map_changes (domain)
    SELECT DISTINCT d.domain FROM (
        SELECT unnest(domains) AS domain
        UNION
        SELECT t.domain FROM public.transports t WHERE t.alias_of = ANY (domains)
    ) d WHERE d.domain IS NOT NULL;
    PERFORM pg_catalog.pg_notify('mailbook_maps', '');
END
$$;

CREATE FUNCTION public.users_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    emails text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        emails := ARRAY(SELECT n.email FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        emails := ARRAY(SELECT o.email FROM old_rows o);
    ELSE
        emails := ARRAY(SELECT o.email FROM old_rows o UNION SELECT n.email FROM new_rows n);
    END IF;
    PERFORM public.record_map_changes(ARRAY(
        SELECT split_part(e.email, '@', 2) FROM unnest(emails) e(email)
        UNION
        SELECT a.domain FROM public.aliases a JOIN unnest(emails) e(email) ON a.email = e.email
        UNION
        SELECT split_part(s.address, '@', 2) FROM public.send_as s JOIN unnest(emails) e(email) ON s.login = e.email));
    RETURN NULL;
END
$$;

CREATE FUNCTION public.aliases_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.record_map_changes(ARRAY(SELECT DISTINCT n.domain FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.record_map_changes(ARRAY(SELECT DISTINCT o.domain FROM old_rows o));
    ELSE
        PERFORM public.record_map_changes(ARRAY(SELECT o.domain FROM old_rows o UNION SELECT n.domain FROM new_rows n));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.send_as_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.record_map_changes(ARRAY(SELECT DISTINCT split_part(n.address, '@', 2) FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.record_map_changes(ARRAY(SELECT DISTINCT split_part(o.address, '@', 2) FROM old_rows o));
    ELSE
        PERFORM public.record_map_changes(ARRAY(SELECT split_part(o.address, '@', 2) FROM old_rows o
                                                UNION SELECT split_part(n.address, '@', 2) FROM new_rows n));
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION public.transports_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    domains text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        domains := ARRAY(SELECT n.domain FROM new_rows n UNION SELECT n.alias_of FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        domains := ARRAY(SELECT o.domain FROM old_rows o UNION SELECT o.alias_of FROM old_rows o);
    ELSE
        domains := ARRAY(SELECT o.domain FROM old_rows o UNION SELECT o.alias_of FROM old_rows o
                         UNION SELECT n.domain FROM new_rows n UNION SELECT n.alias_of FROM new_rows n);
    END IF;
    PERFORM public.record_map_changes(ARRAY(
        SELECT d.domain FROM unnest(domains) d(domain)
        UNION
        SELECT split_part(s.address, '@', 2) FROM public.send_as s
          JOIN public.users u ON u.email = s.login
         WHERE u.domain = ANY (domains)));
    RETURN NULL;
END
$$;

CREATE FUNCTION public.truncate_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO public.map_changes (domain) VALUES (NULL);
    PERFORM pg_catalog.pg_notify('mailbook_maps', '');
    RETURN NULL;
END
$$;

-- transition tables allow one event per trigger: three per table, and TRUNCATE
DO $triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'aliases', 'send_as', 'transports'] LOOP
        EXECUTE format('CREATE TRIGGER %1$s_map_changes_insert AFTER INSERT ON public.%1$I'
                       ' REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.%1$s_map_changes()', t);
        EXECUTE format('CREATE TRIGGER %1$s_map_changes_update AFTER UPDATE ON public.%1$I'
                       ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION public.%1$s_map_changes()', t);
        EXECUTE format('CREATE TRIGGER %1$s_map_changes_delete AFTER DELETE ON public.%1$I'
                       ' REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.%1$s_map_changes()', t);
        EXECUTE format('CREATE TRIGGER %1$s_map_changes_truncate AFTER TRUNCATE ON public.%1$I'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION public.truncate_map_changes()', t);
    END LOOP;
END
$triggers$;

COMMENT ON FUNCTION public.record_map_changes(text[]) IS 'Records domains (and their alias domains) in map_changes and notifies mailbook_maps; called by the triggers below.';
COMMENT ON FUNCTION public.users_map_changes() IS 'Trigger: the domains whose keys a change of mailboxes may touch (the mailbox''s, its aliases'' and send-as grants'').';
COMMENT ON FUNCTION public.aliases_map_changes() IS 'Trigger: the domains whose keys a change of aliases may touch.';
COMMENT ON FUNCTION public.send_as_map_changes() IS 'Trigger: the domains whose sender-login keys a change of grants may touch.';
COMMENT ON FUNCTION public.transports_map_changes() IS 'Trigger: a changed domain, its alias domains and their targets.';
COMMENT ON FUNCTION public.truncate_map_changes() IS 'Trigger: a TRUNCATE records every domain (NULL).';

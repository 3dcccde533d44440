-- `mailbook maps follow` keeps the compiled lmdb: tables current. It needs to know which
-- keys may have changed since the snapshot it last applied, durably (across a restart of
-- either side) and without writing anything itself (it connects as mailreader). So every
-- statement that changes users, aliases, transports or send_as records, in the same
-- transaction, the ADDRESSES (or, where it cannot tell, the whole DOMAINS) whose compiled
-- keys it may change, tagged with its transaction id; the follower asks for the rows its
-- last snapshot did not see yet (compiled_map_changes() in sql/api/75_compiled_maps.sql)
-- and recomputes those keys only: an address is the key equal to it in every map; a
-- domain is every key of that domain (a key's domain is the part after "@", or the key
-- itself for a domain key; compiled_map_rows' header says which keys there are).
--
-- Which, from the rules in sql/api/75_compiled_maps.sql:
-- * a mailbox (users), old and new: its address, the addresses of the aliases that reach
--   it and the send-as addresses it holds (sender-login: an alias or grant counts only if
--   its mailbox is active), which may be in other domains; catch-alls that reach it are
--   left out (their keys name the mailbox, whatever its state);
-- * an alias row: its address; a catch-all ("@domain") decides the self-keys of every
--   address of its domain: the whole domain;
-- * a send-as grant: its address;
-- * a domain (transports): the whole domain, and its alias_of target, old and new
--   (recorded though no key of the target depends on it: cheap, and safe if a rule ever
--   comes to), plus the send-as addresses its mailboxes hold (a grant counts only if the
--   login's domain is active);
-- * every address above also changes local@alias in its domain's alias domains, and
--   every domain its alias domains (local@alias keys repeat the target's), added last.
-- TRUNCATE cannot tell: it records NULL, NULL, which means every key.
-- tests/test_maps_follow.py proves the list with random provisioning sequences.
-- The trigger functions are plain (SECURITY INVOKER): only mailowner writes these tables.
-- depends: 0090_document_the_schema

CREATE TABLE public.map_changes (
    xid        xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    domain     text,  -- NULL: every domain (a TRUNCATE)
    address    text,  -- NULL: every key of domain
    changed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.map_changes IS
    'Addresses and domains whose compiled map keys a transaction may have changed, by transaction id (written by triggers; read by `mailbook maps follow` through compiled_map_changes())';
COMMENT ON COLUMN public.map_changes.xid IS 'The changing transaction: a follower takes the ones its last snapshot did not see.';
COMMENT ON COLUMN public.map_changes.domain IS 'The domain of address, or a domain whose keys may all have changed (address NULL); NULL: every domain (a TRUNCATE).';
COMMENT ON COLUMN public.map_changes.address IS 'An address whose key (in every map) may have changed; NULL: every key of domain.';
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

-- record_map_changes(domains, addresses) -> void: the domains (every key) and their alias
-- domains, the addresses and the same local parts in their domains' alias domains, and a
-- notification on channel mailbook_maps (delivered at commit, once per transaction).
CREATE FUNCTION public.record_map_changes(domains text[], addresses text[]) RETURNS void
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
    INSERT INTO public.map_changes (domain, address)
    SELECT DISTINCT split_part(a.address, '@', 2), a.address FROM (
        SELECT unnest(addresses) AS address
        UNION
        SELECT split_part(x.address, '@', 1) || '@' || t.domain
          FROM unnest(addresses) x(address)
          JOIN public.transports t ON t.alias_of = split_part(x.address, '@', 2)
    ) a WHERE a.address IS NOT NULL;
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
    PERFORM public.record_map_changes(NULL, ARRAY(
        SELECT e.email FROM unnest(emails) e(email)
        UNION
        SELECT a.alias FROM public.aliases a JOIN unnest(emails) e(email) ON a.email = e.email
         WHERE a.alias NOT LIKE '@%'
        UNION
        SELECT s.address FROM public.send_as s JOIN unnest(emails) e(email) ON s.login = e.email));
    RETURN NULL;
END
$$;

CREATE FUNCTION public.aliases_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    names text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        names := ARRAY(SELECT n.alias FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        names := ARRAY(SELECT o.alias FROM old_rows o);
    ELSE
        names := ARRAY(SELECT o.alias FROM old_rows o UNION SELECT n.alias FROM new_rows n);
    END IF;
    -- a catch-all ("@domain") decides the self-keys of its whole domain
    PERFORM public.record_map_changes(
        ARRAY(SELECT DISTINCT substr(x.alias, 2) FROM unnest(names) x(alias) WHERE x.alias LIKE '@%'),
        ARRAY(SELECT DISTINCT x.alias FROM unnest(names) x(alias) WHERE x.alias NOT LIKE '@%'));
    RETURN NULL;
END
$$;

CREATE FUNCTION public.send_as_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.record_map_changes(NULL, ARRAY(SELECT DISTINCT n.address FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.record_map_changes(NULL, ARRAY(SELECT DISTINCT o.address FROM old_rows o));
    ELSE
        PERFORM public.record_map_changes(NULL, ARRAY(SELECT o.address FROM old_rows o UNION SELECT n.address FROM new_rows n));
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
    PERFORM public.record_map_changes(domains, ARRAY(
        SELECT s.address FROM public.send_as s
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

COMMENT ON FUNCTION public.record_map_changes(text[], text[]) IS 'Records domains (every key) and addresses (one key each), with their alias domains'' counterparts, in map_changes and notifies mailbook_maps; called by the triggers below.';
COMMENT ON FUNCTION public.users_map_changes() IS 'Trigger: the addresses whose keys a change of mailboxes may touch (the mailbox, the aliases that reach it, its send-as grants).';
COMMENT ON FUNCTION public.aliases_map_changes() IS 'Trigger: the alias addresses a change of aliases touches; for a catch-all, its whole domain.';
COMMENT ON FUNCTION public.send_as_map_changes() IS 'Trigger: the send-as addresses whose sender-login keys a change of grants touches.';
COMMENT ON FUNCTION public.transports_map_changes() IS 'Trigger: a changed domain (every key), its alias domains and targets, and the send-as addresses its mailboxes hold.';
COMMENT ON FUNCTION public.truncate_map_changes() IS 'Trigger: a TRUNCATE records every domain (NULL).';

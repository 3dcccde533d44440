-- Compiled maps: every key of every Postfix map, computed set-wise, for `mailbook maps
-- compile` to write into lmdb: tables (Postfix then answers from a local file, at hash:
-- speed, and keeps answering while PostgreSQL is down). Each map is one statement over
-- the tables, never a call of the lookup function per key; `mailbook maps verify` and
-- tests/test_compiled_maps.py prove that the keys answer what 70_lookups.sql answers.
--
-- How each rule of the pgsql: maps becomes keys. Postfix looks up an address as
-- user@domain, then @domain (virtual(5), the sender login maps); a transport as
-- user@domain, then domain (transport(5)); domains as the domain.
-- * domains, relay-domains: one key per active domain, its own name as the value.
-- * mailboxes: one key per active mailbox of an active domain -> its maildir.
-- * transport: one key per active domain -> its transport, but for the default
--   "virtual:" (a mailbox domain), left to virtual_transport as postfix_transport()
--   leaves it. transport.cf answers the whole address with its domain's transport
--   ('%d'); here the address finds nothing and Postfix's next lookup, the domain,
--   answers the same.
-- * virtual, in a hosted domain: each address with active alias rows -> their
--   destinations. A catch-all becomes the "@domain" key, which Postfix tries after the
--   address; so that it never swallows mail the SQL map does not give it, every mailbox
--   and every alias address of that domain (active or not) without an active alias row
--   gets a self-key, address -> address, which Postfix treats as "found, keep it".
-- * virtual, in an active alias domain of an active target: one key per local part the
--   target accepts (an active mailbox or an active alias): local@alias -> local@target.
--   If the target has a catch-all, "@alias" -> "@target" (virtual(5): the same user in
--   the other domain) and self-keys for the target's mailboxes and aliases that do not
--   accept (disabled mailboxes, inactive aliases).
-- * refused-recipients: a self-key makes smtpd accept the address at RCPT (any match in
--   virtual_alias_maps does, smtpd_check.c), where the SQL maps answer nothing and smtpd
--   refuses it as unknown. So every self-key that is not an active mailbox is listed here
--   for check_recipient_access, with the reply the SQL maps give: 550 5.1.1.
-- * sender-login: for every address that is a mailbox, an alias or a send-as grant: the
--   active mailbox itself, the active mailboxes its active alias rows reach, the active
--   grantees; in an active alias domain, local@alias gets what local@target gets plus
--   the grants of local@alias as written. Catch-alls grant nothing ("@domain" is never a key).
-- Inactive domains, mailboxes and alias rows give no keys (beyond the self-keys above).

-- compiled_map_rows(map, domains, addresses) -> (key, value)
-- Caller: `mailbook maps compile`, `verify` and `follow`, as mailreader, in one
-- REPEATABLE READ READ ONLY transaction for all maps. map is one of domains, mailboxes,
-- virtual, transport, relay-domains, sender-login, refused-recipients; a value with
-- several answers joins them with "," in order, as pgsql_table(5) does. domains: every
-- key of these domains (a key's domain is the part after "@", or the key itself for a
-- domain key); addresses: the keys equal to these addresses; both are what `follow`
-- recomputes after a change. Both NULL: every key. Raises 22023 for an unknown map name.
-- Each source row is filtered by the domain its keys land in, widened by the targets of
-- the alias domains asked for (their local@alias keys come from the target's rows), or
-- by its address (and local@target for an address local@alias), so that a few domains
-- or addresses cost index scans, not the whole tables; plans are made for the actual
-- arguments (force_custom_plan), so every key costs no filter at all.
CREATE FUNCTION public.compiled_map_rows(map text, domains text[], addresses text[]) RETURNS TABLE (key text, value text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    everything boolean := domains IS NULL AND addresses IS NULL;
    doms text[] := coalesce(domains, '{}');
    addrs text[] := coalesce(addresses, '{}');
    wanted text[];  -- whole domains: doms and the targets of the alias domains among them
    sources text[]; -- single addresses: addrs and local@target for each local@alias among them
    at_domains text[];  -- the domains of sources (their catch-alls decide self-keys)
    key_domains text[]; -- the domains keys may land in: doms and the domains of addrs
BEGIN
    IF NOT everything THEN
        wanted := doms || ARRAY(SELECT t.alias_of FROM public.transports t
                                 WHERE t.domain = ANY (doms) AND t.alias_of IS NOT NULL);
        sources := addrs || ARRAY(SELECT split_part(x.address, '@', 1) || '@' || t.alias_of
                                    FROM unnest(addrs) x(address)
                                    JOIN public.transports t ON t.domain = split_part(x.address, '@', 2)
                                   WHERE t.alias_of IS NOT NULL);
        at_domains := ARRAY(SELECT DISTINCT split_part(x.address, '@', 2) FROM unnest(sources) x(address));
        key_domains := doms || ARRAY(SELECT DISTINCT split_part(x.address, '@', 2) FROM unnest(addrs) x(address));
    END IF;
    CASE map
    WHEN 'domains' THEN
        RETURN QUERY
            SELECT t.domain, t.domain FROM public.transports t
              LEFT JOIN public.transports g ON g.domain = t.alias_of
             WHERE t.active AND NOT public.is_relay_transport(t.transport)
               AND (t.alias_of IS NULL OR g.active)
               AND (everything OR t.domain = ANY (doms));
    WHEN 'mailboxes' THEN
        RETURN QUERY
            SELECT u.email::text, u.maildir::text FROM public.users u
              JOIN public.transports t ON t.domain = u.domain
             WHERE u.active AND t.active
               AND (everything OR u.domain = ANY (doms) OR u.email = ANY (addrs));
    WHEN 'transport' THEN
        RETURN QUERY
            SELECT t.domain, t.transport FROM public.transports t
             WHERE t.active AND t.transport <> 'virtual:'
               AND (everything OR t.domain = ANY (doms));
    WHEN 'relay-domains' THEN
        RETURN QUERY
            SELECT t.domain, t.domain FROM public.transports t
             WHERE t.active AND public.is_relay_transport(t.transport)
               AND (everything OR t.domain = ANY (doms));
    WHEN 'virtual' THEN
        RETURN QUERY SELECT r.key, r.value FROM public.compiled_virtual_rows(key_domains, wanted, sources, at_domains) r
                      WHERE everything OR split_part(r.key, '@', 2) = ANY (doms) OR r.key = ANY (addrs);
    WHEN 'refused-recipients' THEN
        RETURN QUERY
            SELECT r.key, '550 5.1.1 User unknown in virtual mailbox table'
              FROM public.compiled_virtual_rows(key_domains, wanted, sources, at_domains) r
             WHERE r.key = r.value
               AND (everything OR split_part(r.key, '@', 2) = ANY (doms) OR r.key = ANY (addrs))
               AND NOT EXISTS (SELECT FROM public.users u JOIN public.transports t ON t.domain = u.domain
                                WHERE u.email = r.key AND u.active AND t.active);
    WHEN 'sender-login' THEN
        RETURN QUERY
        WITH alias_domains AS (
            SELECT t.domain, t.alias_of AS target FROM public.transports t
             WHERE t.active AND t.alias_of IS NOT NULL
               AND (everything OR t.domain = ANY (key_domains))
        ), grants AS (
            SELECT s.address::text AS address, s.login::text AS login FROM public.send_as s
              JOIN public.users u ON u.email = s.login
              JOIN public.transports t ON t.domain = u.domain
             WHERE u.active AND t.active
               AND (everything OR split_part(s.address, '@', 2) = ANY (wanted) OR s.address = ANY (sources))
        ), owners AS (  -- who owns each address as it resolves (the target's, in an alias domain)
            SELECT u.email::text AS address, u.email::text AS login FROM public.users u
              JOIN public.transports t ON t.domain = u.domain
             WHERE u.active AND t.active
               AND (everything OR u.domain = ANY (wanted) OR u.email = ANY (sources))
            UNION ALL
            SELECT a.alias::text, a.email::text FROM public.aliases a
              JOIN public.users u ON u.email = a.email
              JOIN public.transports t ON t.domain = a.domain
             WHERE a.active AND u.active AND t.active
               AND (everything OR a.domain = ANY (wanted) OR a.alias = ANY (sources))
            UNION ALL
            SELECT g.address, g.login FROM grants g
        ), keyed AS (
            SELECT o.address AS key, o.login FROM owners o
             WHERE split_part(o.address, '@', 2) NOT IN (SELECT d.domain FROM alias_domains d)
            UNION ALL
            SELECT split_part(o.address, '@', 1) || '@' || d.domain, o.login FROM owners o
              JOIN alias_domains d ON d.target = split_part(o.address, '@', 2)
            UNION ALL
            SELECT g.address, g.login FROM grants g
              JOIN alias_domains d ON d.domain = split_part(g.address, '@', 2)
        )
        SELECT k.key, string_agg(DISTINCT k.login, ',' ORDER BY k.login) FROM keyed k
         WHERE k.key NOT LIKE '@%'
           AND (everything OR split_part(k.key, '@', 2) = ANY (doms) OR k.key = ANY (addrs))
         GROUP BY k.key;
    ELSE
        RAISE EXCEPTION 'unknown compiled map %', map USING ERRCODE = 'invalid_parameter_value',
              HINT = 'one of domains, mailboxes, virtual, transport, relay-domains, sender-login, refused-recipients';
    END CASE;
END
$$;
REVOKE ALL ON FUNCTION public.compiled_map_rows(text, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compiled_map_rows(text, text[], text[]) TO mailreader, mailadmin;

-- compiled_map_rows(map, domains) -> (key, value)
-- Caller: as compiled_map_rows(map, domains, addresses) above; every key of these
-- domains (NULL: every key).
CREATE FUNCTION public.compiled_map_rows(map text, domains text[]) RETURNS TABLE (key text, value text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.key, r.value FROM public.compiled_map_rows(map, domains, NULL) r
$$;
REVOKE ALL ON FUNCTION public.compiled_map_rows(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compiled_map_rows(text, text[]) TO mailreader, mailadmin;

-- compiled_map_rows(map) -> (key, value)
-- Caller: as compiled_map_rows(map, domains, addresses) above; every key of the map.
CREATE FUNCTION public.compiled_map_rows(map text) RETURNS TABLE (key text, value text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.key, r.value FROM public.compiled_map_rows(map, NULL, NULL) r
$$;
REVOKE ALL ON FUNCTION public.compiled_map_rows(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compiled_map_rows(text) TO mailreader, mailadmin;

-- compiled_virtual_rows(domains, wanted, sources, at_domains) -> (key, value)
-- Caller: compiled_map_rows('virtual') and ('refused-recipients'); not granted to anyone.
-- The keys of virtual_alias_maps, as the header of this file explains, for the keys of
-- domains, read from the rows of whole domains wanted, of the addresses sources and of
-- the catch-alls of at_domains (as compiled_map_rows works them out; the caller filters
-- the keys it asked for). All NULL: every key.
CREATE FUNCTION public.compiled_virtual_rows(domains text[], wanted text[], sources text[], at_domains text[])
    RETURNS TABLE (key text, value text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN QUERY
    WITH hosted AS (
        SELECT t.domain FROM public.transports t WHERE t.active AND t.alias_of IS NULL
           AND (domains IS NULL OR t.domain = ANY (domains))
    ), aliased AS (  -- an active alias domain of an active target
        SELECT t.domain, t.alias_of AS target FROM public.transports t
          JOIN public.transports g ON g.domain = t.alias_of AND g.active
         WHERE t.active
           AND (domains IS NULL OR t.domain = ANY (domains))
    ), named AS (  -- every mailbox or alias address, and whether it accepts mail
        SELECT n.address, bool_or(n.accepts) AS accepts FROM (
            SELECT u.email::text AS address, u.active AS accepts FROM public.users u
             WHERE wanted IS NULL OR u.domain = ANY (wanted) OR u.email = ANY (sources)
            UNION ALL
            SELECT a.alias::text, a.active FROM public.aliases a WHERE a.alias NOT LIKE '@%'
               AND (wanted IS NULL OR a.domain = ANY (wanted) OR a.alias = ANY (sources))
        ) n GROUP BY n.address
    ), forwards AS (
        SELECT a.alias::text AS address, string_agg(a.email::text, ',' ORDER BY a.email) AS destinations
          FROM public.aliases a WHERE a.active AND a.alias NOT LIKE '@%'
           AND (wanted IS NULL OR a.domain = ANY (wanted) OR a.alias = ANY (sources))
         GROUP BY a.alias
    ), catch_alls AS (
        SELECT a.domain, string_agg(a.email::text, ',' ORDER BY a.email) AS destinations
          FROM public.aliases a WHERE a.active AND a.alias LIKE '@%'
           AND (wanted IS NULL OR a.domain = ANY (wanted)
                OR a.alias = ANY (ARRAY(SELECT '@' || x.domain FROM unnest(at_domains) x(domain))))
         GROUP BY a.domain
    )
    SELECT f.address, f.destinations FROM forwards f
      JOIN hosted h ON h.domain = split_part(f.address, '@', 2)
    UNION ALL
    SELECT '@' || c.domain, c.destinations FROM catch_alls c JOIN hosted h ON h.domain = c.domain
    UNION ALL
    SELECT n.address, n.address FROM named n
      JOIN catch_alls c ON c.domain = split_part(n.address, '@', 2)
      JOIN hosted h ON h.domain = c.domain
     WHERE NOT EXISTS (SELECT FROM forwards f WHERE f.address = n.address)
    UNION ALL
    SELECT split_part(n.address, '@', 1) || '@' || d.domain, n.address FROM aliased d
      JOIN named n ON split_part(n.address, '@', 2) = d.target
     WHERE n.accepts
    UNION ALL
    SELECT '@' || d.domain, '@' || d.target FROM aliased d JOIN catch_alls c ON c.domain = d.target
    UNION ALL
    SELECT split_part(n.address, '@', 1) || '@' || d.domain, split_part(n.address, '@', 1) || '@' || d.domain
      FROM aliased d
      JOIN catch_alls c ON c.domain = d.target
      JOIN named n ON split_part(n.address, '@', 2) = d.target
     WHERE NOT n.accepts;
END
$$;
REVOKE ALL ON FUNCTION public.compiled_virtual_rows(text[], text[], text[], text[]) FROM PUBLIC;

-- compiled_map_changes(since) -> (domain, address)
-- Caller: `mailbook maps follow`, as mailreader, in the REPEATABLE READ READ ONLY
-- transaction that then reads compiled_map_rows(map, domains, addresses) for the same
-- snapshot.
-- since: the snapshot the follower applied last (pg_current_snapshot() of its previous
-- batch). Returns each (domain, address) recorded in map_changes (migration 0200) by a
-- transaction that this snapshot sees and since did not: an address is its one key, a
-- NULL address every key of the domain, and a NULL domain every key. Raises
-- 55000 if prune_map_changes() may have deleted such a row (the follower then compiles
-- in full).
CREATE FUNCTION public.compiled_map_changes(since pg_snapshot) RETURNS TABLE (domain text, address text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pruned xid8;
BEGIN
    SELECT h.pruned_xid INTO pruned FROM public.map_changes_horizon h;
    IF pruned IS NOT NULL AND pruned >= pg_snapshot_xmin(since) THEN
        RAISE EXCEPTION 'changes since snapshot % were pruned (up to transaction %)', since, pruned
              USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'compile the maps in full';
    END IF;
    RETURN QUERY
        SELECT DISTINCT c.domain, c.address FROM public.map_changes c
         WHERE c.xid >= pg_snapshot_xmin(since)
           AND pg_visible_in_snapshot(c.xid, pg_current_snapshot())
           AND NOT pg_visible_in_snapshot(c.xid, since);
END
$$;
REVOKE ALL ON FUNCTION public.compiled_map_changes(pg_snapshot) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compiled_map_changes(pg_snapshot) TO mailreader, mailadmin;

-- compiled_map_lag(since) -> (transactions, oldest, pruned)
-- Caller: `mailbook doctor --compiled DIR`, as any role that may read the maps.
-- How far compiled tables that applied snapshot `since` are behind: the committed
-- transactions that changed map keys since (transactions), when the oldest of them
-- wrote (oldest; NULL if none), and whether pruning has made `since` too old to follow
-- (pruned: the follower will compile in full).
CREATE FUNCTION public.compiled_map_lag(since pg_snapshot,
                                        OUT transactions bigint, OUT oldest timestamptz, OUT pruned boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(DISTINCT c.xid), min(c.changed_at),
           coalesce((SELECT h.pruned_xid >= pg_snapshot_xmin(since) FROM public.map_changes_horizon h), false)
      FROM public.map_changes c
     WHERE c.xid >= pg_snapshot_xmin(since)
       AND pg_visible_in_snapshot(c.xid, pg_current_snapshot())
       AND NOT pg_visible_in_snapshot(c.xid, since)
$$;
REVOKE ALL ON FUNCTION public.compiled_map_lag(pg_snapshot) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compiled_map_lag(pg_snapshot) TO mailreader, mailadmin;

-- prune_map_changes(older_than) -> rows deleted
-- Caller: members of mailadmin (runner: `mailbook maps prune`, e.g. daily from cron).
-- Runs as mailowner. Deletes the change records older than older_than (default 7 days)
-- and records the newest transaction deleted in map_changes_horizon, so that a follower
-- whose last snapshot is older compiles in full instead of missing a change. Raises
-- 22023 for a negative interval.
CREATE FUNCTION public.prune_map_changes(older_than interval DEFAULT '7 days') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted bigint;
    newest xid8;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'retention % is not a positive interval', coalesce(older_than::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH gone AS (
        DELETE FROM public.map_changes c WHERE c.changed_at < now() - older_than RETURNING c.xid
    )
    SELECT count(*), max(g.xid) INTO deleted, newest FROM gone g;
    IF newest IS NOT NULL THEN
        UPDATE public.map_changes_horizon h
           SET pruned_xid = CASE WHEN h.pruned_xid IS NULL OR h.pruned_xid < newest THEN newest ELSE h.pruned_xid END,
               pruned_at = now();
    END IF;
    RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION public.prune_map_changes(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.prune_map_changes(interval) TO mailadmin;

-- map_changes (0112) recorded every UPDATE of users, aliases, send_as and transports, and
-- mailreader reads it (compiled_map_changes(), compiled_map_lag(), LISTEN mailbook_maps):
-- Postfix's role learnt when a password, realname, quota, service list or domain limit
-- changed (issue 28). An UPDATE now records only the rows whose map columns changed, the
-- columns sql/api/70_lookups.sql and 75_compiled_maps.sql read:
--   users: email, maildir, active (domain is generated from email);
--   aliases: alias, email, active (domain is generated from alias);
--   send_as: login, address;
--   transports: domain, transport, active, alias_of.
-- Not password, realname, quota_*, disabled_services, created, modified (users), nor gid,
-- disabled_services, max_*, created, modified (transports), nor created (aliases, send_as).
-- A trigger with transition tables cannot be UPDATE OF columns (CREATE TRIGGER: "if the
-- trigger is an UPDATE trigger, it must not specify a column_name list"), so each
-- function compares old_rows and new_rows on those columns: a row whose map columns
-- are the same before and after cancels out (EXCEPT both ways), a renamed key is both
-- its old and its new self. A statement that changed no map column records nothing and
-- sends no notification. INSERT, DELETE and TRUNCATE record as before: a removed
-- address stays in map_changes for the retention window (the follower must delete its
-- keys), as it was in the maps mailreader read before.
-- tests/pgtap/15_map_change_columns.sql holds it.
-- depends: 0201_refuse_comment_map_keys

-- record_map_changes(domains, addresses): as in 0112, but a notification only when a row
-- was recorded (a listener learns nothing from a statement that changed no key).
CREATE OR REPLACE FUNCTION public.record_map_changes(domains text[], addresses text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n_domains bigint;
    n_addresses bigint;
BEGIN
    INSERT INTO public.map_changes (domain)
    SELECT DISTINCT d.domain FROM (
        SELECT unnest(domains) AS domain
        UNION
        SELECT t.domain FROM public.transports t WHERE t.alias_of = ANY (domains)
    ) d WHERE d.domain IS NOT NULL;
    GET DIAGNOSTICS n_domains = ROW_COUNT;
    INSERT INTO public.map_changes (domain, address)
    SELECT DISTINCT split_part(a.address, '@', 2), a.address FROM (
        SELECT unnest(addresses) AS address
        UNION
        SELECT split_part(x.address, '@', 1) || '@' || t.domain
          FROM unnest(addresses) x(address)
          JOIN public.transports t ON t.alias_of = split_part(x.address, '@', 2)
    ) a WHERE a.address IS NOT NULL;
    GET DIAGNOSTICS n_addresses = ROW_COUNT;
    IF n_domains + n_addresses > 0 THEN
        PERFORM pg_catalog.pg_notify('mailbook_maps', '');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION public.users_map_changes() RETURNS trigger
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
    ELSE  -- the rows whose map columns changed, old and new
        emails := ARRAY(SELECT c.email FROM (
            (SELECT o.email, o.maildir, o.active FROM old_rows o
             EXCEPT SELECT n.email, n.maildir, n.active FROM new_rows n)
            UNION
            (SELECT n.email, n.maildir, n.active FROM new_rows n
             EXCEPT SELECT o.email, o.maildir, o.active FROM old_rows o)) c);
    END IF;
    IF cardinality(emails) = 0 THEN
        RETURN NULL;
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

CREATE OR REPLACE FUNCTION public.aliases_map_changes() RETURNS trigger
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
    ELSE  -- the rows whose map columns changed, old and new
        names := ARRAY(SELECT c.alias FROM (
            (SELECT o.alias, o.email, o.active FROM old_rows o
             EXCEPT SELECT n.alias, n.email, n.active FROM new_rows n)
            UNION
            (SELECT n.alias, n.email, n.active FROM new_rows n
             EXCEPT SELECT o.alias, o.email, o.active FROM old_rows o)) c);
    END IF;
    IF cardinality(names) = 0 THEN
        RETURN NULL;
    END IF;
    -- a catch-all ("@domain") decides the self-keys of its whole domain
    PERFORM public.record_map_changes(
        ARRAY(SELECT DISTINCT substr(x.alias, 2) FROM unnest(names) x(alias) WHERE x.alias LIKE '@%'),
        ARRAY(SELECT DISTINCT x.alias FROM unnest(names) x(alias) WHERE x.alias NOT LIKE '@%'));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.send_as_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addresses text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        addresses := ARRAY(SELECT DISTINCT n.address FROM new_rows n);
    ELSIF TG_OP = 'DELETE' THEN
        addresses := ARRAY(SELECT DISTINCT o.address FROM old_rows o);
    ELSE  -- the rows whose map columns changed, old and new
        addresses := ARRAY(SELECT c.address FROM (
            (SELECT o.address, o.login FROM old_rows o EXCEPT SELECT n.address, n.login FROM new_rows n)
            UNION
            (SELECT n.address, n.login FROM new_rows n EXCEPT SELECT o.address, o.login FROM old_rows o)) c);
    END IF;
    IF cardinality(addresses) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM public.record_map_changes(NULL, addresses);
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION public.transports_map_changes() RETURNS trigger
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
    ELSE  -- the rows whose map columns changed, old and new (and their targets)
        domains := ARRAY(SELECT d.domain FROM (
            (SELECT o.domain, o.transport, o.active, o.alias_of FROM old_rows o
             EXCEPT SELECT n.domain, n.transport, n.active, n.alias_of FROM new_rows n)
            UNION
            (SELECT n.domain, n.transport, n.active, n.alias_of FROM new_rows n
             EXCEPT SELECT o.domain, o.transport, o.active, o.alias_of FROM old_rows o)) c
            CROSS JOIN LATERAL (VALUES (c.domain), (c.alias_of)) d(domain)
            WHERE d.domain IS NOT NULL);
    END IF;
    IF cardinality(array_remove(domains, NULL)) = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM public.record_map_changes(domains, ARRAY(
        SELECT s.address FROM public.send_as s
          JOIN public.users u ON u.email = s.login
         WHERE u.domain = ANY (domains)));
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION public.record_map_changes(text[], text[]) IS 'Records domains (every key) and addresses (one key each), with their alias domains'' counterparts, in map_changes and, if it recorded any, notifies mailbook_maps; called by the triggers below.';
COMMENT ON FUNCTION public.users_map_changes() IS 'Trigger: the addresses whose keys a change of mailboxes may touch (the mailbox, the aliases that reach it, its send-as grants); an UPDATE only of rows whose email, maildir or active changed.';
COMMENT ON FUNCTION public.aliases_map_changes() IS 'Trigger: the alias addresses a change of aliases touches; for a catch-all, its whole domain; an UPDATE only of rows whose alias, email or active changed.';
COMMENT ON FUNCTION public.send_as_map_changes() IS 'Trigger: the send-as addresses whose sender-login keys a change of grants touches; an UPDATE only of rows whose login or address changed.';
COMMENT ON FUNCTION public.transports_map_changes() IS 'Trigger: a changed domain (every key), its alias domains and targets, and the send-as addresses its mailboxes hold; an UPDATE only of rows whose domain, transport, active or alias_of changed.';

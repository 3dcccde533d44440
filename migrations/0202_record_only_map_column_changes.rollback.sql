-- Undo 0202_record_only_map_column_changes: the trigger functions of 0112 again (every UPDATE
-- of users, aliases, send_as and transports is recorded and notified, whatever it changed).

CREATE OR REPLACE FUNCTION public.record_map_changes(domains text[], addresses text[]) RETURNS void
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

CREATE OR REPLACE FUNCTION public.send_as_map_changes() RETURNS trigger
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

COMMENT ON FUNCTION public.record_map_changes(text[], text[]) IS 'Records domains (every key) and addresses (one key each), with their alias domains'' counterparts, in map_changes and notifies mailbook_maps; called by the triggers below.';
COMMENT ON FUNCTION public.users_map_changes() IS 'Trigger: the addresses whose keys a change of mailboxes may touch (the mailbox, the aliases that reach it, its send-as grants).';
COMMENT ON FUNCTION public.aliases_map_changes() IS 'Trigger: the alias addresses a change of aliases touches; for a catch-all, its whole domain.';
COMMENT ON FUNCTION public.send_as_map_changes() IS 'Trigger: the send-as addresses whose sender-login keys a change of grants touches.';
COMMENT ON FUNCTION public.transports_map_changes() IS 'Trigger: a changed domain (every key), its alias domains and targets, and the send-as addresses its mailboxes hold.';

-- Undo 0206_record_bulk_inserts_by_domain: every inserted mailbox and alias is recorded
-- address by address again (the trigger functions of 0202 and 0205). Records written
-- meanwhile stay; the followers read domain rows either way.

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

CREATE OR REPLACE FUNCTION public.users_auth_cache_changes() RETURNS trigger
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

COMMENT ON FUNCTION public.users_map_changes() IS 'Trigger: the addresses whose keys a change of mailboxes may touch (the mailbox, the aliases that reach it, its send-as grants); an UPDATE only of rows whose email, maildir or active changed.';
COMMENT ON FUNCTION public.aliases_map_changes() IS 'Trigger: the alias addresses a change of aliases touches; for a catch-all, its whole domain; an UPDATE only of rows whose alias, email or active changed.';
COMMENT ON FUNCTION public.users_auth_cache_changes() IS 'Trigger: a mailbox added or removed, or whose email, password, active, disabled_services, maildir, quota_bytes or quota_messages changed (old and new address).';

-- An import of 1,000,000 mailboxes wrote 2,000,000 change records, one per address in
-- map_changes (0112, for `maps follow`) and one in auth_cache_changes (0205, for
-- `dovecot follow`), each first gathered into an array, sorted and de-duplicated: about
-- 15 s of a 45 s import, the third by which 1.0's import was slower than the turn before
-- it (issue 35). Both records already have a coarser row that means "every key" or
-- "every mailbox" of a domain (address or email NULL), which the followers read as such.
-- So a statement that adds 1,000 or more rows to one domain (users or aliases) now
-- records that domain once instead of each of its rows; smaller statements (every API
-- call, a small import) record their addresses as before. Nothing is lost: the map
-- follower recomputes every key of the domain and its alias domains, the Dovecot
-- follower flushes every mailbox the domain has when it reads the record (the new ones
-- included: their negative cache entries go). The aliases and send-as grants of the new
-- mailboxes, which may be in other domains, are still recorded address by address.
-- UPDATE and DELETE record as before.
-- depends: 0205_add_auth_cache_changes

CREATE OR REPLACE FUNCTION public.users_map_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    emails  text[];
    domains text[];  -- an INSERT's domains that gained 1,000 mailboxes or more: every key
BEGIN
    IF TG_OP = 'INSERT' THEN
        domains := ARRAY(SELECT n.domain FROM new_rows n GROUP BY n.domain HAVING count(*) >= 1000);
        IF cardinality(domains) > 0 THEN
            PERFORM public.record_map_changes(domains, ARRAY(
                SELECT n.email FROM new_rows n WHERE n.domain NOT IN (SELECT unnest(domains))
                UNION
                SELECT a.alias FROM new_rows n JOIN public.aliases a ON a.email = n.email
                 WHERE a.alias NOT LIKE '@%'
                UNION
                SELECT s.address FROM new_rows n JOIN public.send_as s ON s.login = n.email));
            RETURN NULL;
        END IF;
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
    names   text[];
    domains text[];  -- an INSERT's domains that gained 1,000 alias rows or more: every key
BEGIN
    IF TG_OP = 'INSERT' THEN
        domains := ARRAY(SELECT n.domain FROM new_rows n GROUP BY n.domain HAVING count(*) >= 1000);
        IF cardinality(domains) > 0 THEN
            PERFORM public.record_map_changes(ARRAY(
                SELECT unnest(domains)
                UNION
                SELECT substr(n.alias, 2) FROM new_rows n WHERE n.alias LIKE '@%'), ARRAY(
                SELECT DISTINCT n.alias FROM new_rows n WHERE n.domain NOT IN (SELECT unnest(domains)) AND n.alias NOT LIKE '@%'));
            RETURN NULL;
        END IF;
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
DECLARE
    domains text[];  -- an INSERT's domains that gained 1,000 mailboxes or more: every mailbox
BEGIN
    IF TG_OP = 'INSERT' THEN
        domains := ARRAY(SELECT n.domain FROM new_rows n GROUP BY n.domain HAVING count(*) >= 1000);
        IF cardinality(domains) > 0 THEN
            PERFORM public.record_auth_cache_changes(domains,
                ARRAY(SELECT n.email FROM new_rows n WHERE n.domain NOT IN (SELECT unnest(domains))));
        ELSE
            PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT n.email FROM new_rows n));
        END IF;
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

COMMENT ON FUNCTION public.users_map_changes() IS 'Trigger: the addresses whose keys a change of mailboxes may touch (the mailbox, the aliases that reach it, its send-as grants); an UPDATE only of rows whose email, maildir or active changed; an INSERT of 1,000 or more mailboxes into one domain records that domain (every key).';
COMMENT ON FUNCTION public.aliases_map_changes() IS 'Trigger: the alias addresses a change of aliases touches; for a catch-all, its whole domain; an UPDATE only of rows whose alias, email or active changed; an INSERT of 1,000 or more rows into one domain records that domain (every key).';
COMMENT ON FUNCTION public.users_auth_cache_changes() IS 'Trigger: a mailbox added or removed, or whose email, password, active, disabled_services, maildir, quota_bytes or quota_messages changed (old and new address); an INSERT of 1,000 or more mailboxes into one domain records that domain (every mailbox).';

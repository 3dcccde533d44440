-- A mailbox's or alias's domain must be hosted (a row of transports), and a hosted
-- domain cannot be removed while mailboxes or aliases use it. 0006 and 0007 said so
-- with foreign keys. A foreign key checks each new row with a query and a row lock of
-- its own, about 10 us a row: 2.0 s of a 200,000-mailbox import, more than all the
-- rows' CHECKs together. These triggers check the same rule once per statement, over
-- all of its rows at once (transition tables): 0.24 s for 1,000,000 mailboxes.
--
-- The guarantees, and how they are kept:
-- * INSERT or UPDATE of users or aliases: the domains that the statement's rows name
--   are locked FOR KEY SHARE, as a foreign key locks them, then any row whose domain
--   is missing is refused (23503). A concurrent DELETE of one of those domains waits
--   for this transaction; if it came first, the lock waits for it and then finds the
--   row gone.
-- * DELETE of a domain, or UPDATE of its name: refused (23503) while users or aliases
--   rows name it. The check runs after the domain row is locked, so at READ COMMITTED
--   its fresh snapshot shows the rows of every transaction that held the domain
--   locked. At REPEATABLE READ or SERIALIZABLE the transaction's older snapshot may not
--   show them (a foreign key uses a cross-check snapshot, which a trigger cannot), so
--   there a domain cannot be removed or renamed (0A000): do it at READ COMMITTED.
-- * TRUNCATE of transports without users and aliases in the same statement, while they
--   have rows: refused (23503), as a foreign key refuses it.
-- depends: 0012_validate_without_regex_where_cheaper

ALTER TABLE public.users DROP CONSTRAINT users_domain_hosted;
ALTER TABLE public.aliases DROP CONSTRAINT aliases_domain_hosted;

-- refuse_unhosted_domains(): AFTER INSERT/UPDATE ... FOR EACH STATEMENT on a table with
-- a domain column, its new rows as new_rows.
CREATE FUNCTION public.refuse_unhosted_domains() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    needed  text[];
    missing text;
BEGIN
    -- one pass over the new rows (a million of them, in an import), then only the few
    -- domains they name
    SELECT array_agg(d.domain) INTO needed FROM (SELECT DISTINCT n.domain FROM new_rows n) d;
    PERFORM FROM public.transports t
     WHERE t.domain = ANY (needed)
     ORDER BY t.domain
       FOR KEY SHARE OF t;
    SELECT d INTO missing
      FROM unnest(needed) AS d
     WHERE NOT EXISTS (SELECT FROM public.transports t WHERE t.domain = d)
     ORDER BY d
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here (%)', public.quoted(missing), TG_NAME
              USING ERRCODE = 'foreign_key_violation', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                    CONSTRAINT = TG_NAME, HINT = format('call add_domain(%L) first', missing);
    END IF;
    RETURN NULL;
END
$$;

-- refuse_orphaning_domains(): AFTER DELETE/UPDATE ... FOR EACH STATEMENT on transports,
-- its old rows as old_rows (and new rows as new_rows on UPDATE); AFTER TRUNCATE.
CREATE FUNCTION public.refuse_orphaning_domains() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    gone text[];
    used text;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        -- AFTER TRUNCATE runs when every table of the statement is empty
        SELECT u.domain INTO used FROM public.users u LIMIT 1;
        IF NOT FOUND THEN
            SELECT a.domain INTO used FROM public.aliases a LIMIT 1;
        END IF;
        IF used IS NOT NULL THEN
            RAISE EXCEPTION 'cannot truncate transports: domain % still has mailboxes or aliases', public.quoted(used)
                  USING ERRCODE = 'foreign_key_violation', HINT = 'TRUNCATE users, aliases, transports together';
        END IF;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(o.domain) INTO gone FROM old_rows o;
    ELSE  -- UPDATE: only names that no new row keeps
        SELECT array_agg(o.domain) INTO gone FROM old_rows o
         WHERE NOT EXISTS (SELECT FROM new_rows n WHERE n.domain = o.domain);
    END IF;
    IF gone IS NULL THEN
        RETURN NULL;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'domains are removed or renamed at READ COMMITTED only, not at %',
                        upper(current_setting('transaction_isolation'))
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'This snapshot might not show mailboxes that concurrent transactions added to '
                             || public.quoted(gone[1]) || '.';
    END IF;
    SELECT u.domain INTO used FROM public.users u WHERE u.domain = ANY (gone) LIMIT 1;
    IF NOT FOUND THEN
        SELECT a.domain INTO used FROM public.aliases a WHERE a.domain = ANY (gone) LIMIT 1;
    END IF;
    IF used IS NOT NULL THEN
        RAISE EXCEPTION 'domain % still has mailboxes or aliases', public.quoted(used)
              USING ERRCODE = 'foreign_key_violation', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                    HINT = format('remove them first, or call remove_domain(%L, cascade => true)', used);
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION public.refuse_unhosted_domains(), public.refuse_orphaning_domains() FROM PUBLIC;

CREATE TRIGGER users_domain_hosted AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER users_domain_hosted_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER aliases_domain_hosted AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER aliases_domain_hosted_on_update AFTER UPDATE ON public.aliases
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER transports_keep_used_domains AFTER DELETE ON public.transports
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_orphaning_domains();
CREATE TRIGGER transports_keep_used_domains_on_update AFTER UPDATE ON public.transports
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_orphaning_domains();
CREATE TRIGGER transports_keep_used_domains_on_truncate AFTER TRUNCATE ON public.transports
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_orphaning_domains();

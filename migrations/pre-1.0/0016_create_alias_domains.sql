-- Alias domains: x@alias.example reaches x@example.com for each mailbox and alias of
-- example.com, and nothing else: an address the target does not know is still refused
-- at RCPT time (no wildcard that accepts everything and bounces later).
--
-- An alias domain is a row of transports whose alias_of names its target. So a name is
-- hosted or an alias, never both, by transports' primary key (no race between two
-- sessions adding the same name two ways), domains.cf accepts it as it accepts any
-- hosted domain, and enable/disable, the audit log and `domain list` work unchanged.
-- What a foreign key and CHECKs cannot say, triggers do:
-- * the target is a hosted domain, not itself an alias (no chains), and stays one while
--   aliased: its row is locked FOR SHARE before the check, so a concurrent change to it
--   waits, and the check, run after the lock, sees what that change committed;
-- * an alias domain holds no mailboxes or aliases: they live in the target. The
--   hosted-domain check of 0013 (refuse_unhosted_domains) now also refuses an alias
--   domain, and locks the domain rows FOR SHARE instead of FOR KEY SHARE so that a
--   domain cannot become an alias while a mailbox is being added to it.
-- depends: 0015_create_audit_log

ALTER TABLE public.transports
    ADD COLUMN alias_of text
        CONSTRAINT transports_alias_of_hosted REFERENCES public.transports (domain),
    ADD CONSTRAINT transports_alias_not_itself CHECK (alias_of <> domain),
    -- an alias domain is delivered by rewriting to its target: only virtual: fits
    ADD CONSTRAINT transports_alias_is_virtual CHECK (alias_of IS NULL OR transport = 'virtual:');

COMMENT ON COLUMN public.transports.alias_of IS
    'For an alias domain: the hosted domain its addresses are rewritten to; NULL for a hosted domain';

-- the alias domains of a target (remove_domain, the target's checks)
CREATE INDEX transports_alias_of_idx ON public.transports (alias_of) WHERE alias_of IS NOT NULL;

-- refuse_alias_domain_misuse(): AFTER INSERT/UPDATE ... FOR EACH STATEMENT on
-- transports, its new rows as new_rows.
CREATE FUNCTION public.refuse_alias_domain_misuse() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    -- lock the targets first (a concurrent UPDATE of one waits for us, or we for it)
    PERFORM FROM public.transports t
     WHERE t.domain IN (SELECT n.alias_of FROM new_rows n WHERE n.alias_of IS NOT NULL)
     ORDER BY t.domain
       FOR SHARE OF t;
    SELECT n.domain, n.alias_of INTO bad
      FROM new_rows n JOIN public.transports t ON t.domain = n.alias_of
     WHERE t.alias_of IS NOT NULL
     ORDER BY n.domain LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % cannot be an alias of %, which is itself an alias domain',
                        public.quoted(bad.domain), public.quoted(bad.alias_of)
              USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_NAME,
                    HINT = 'make it an alias of the hosted domain instead';
    END IF;
    SELECT n.domain, t.domain AS aliased_by INTO bad
      FROM new_rows n JOIN public.transports t ON t.alias_of = n.domain
     WHERE n.alias_of IS NOT NULL
     ORDER BY n.domain LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % cannot become an alias domain: % is an alias of it',
                        public.quoted(bad.domain), public.quoted(bad.aliased_by)
              USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_NAME;
    END IF;
    SELECT n.domain INTO bad
      FROM new_rows n
     WHERE n.alias_of IS NOT NULL
       AND (EXISTS (SELECT FROM public.users u WHERE u.domain = n.domain)
            OR EXISTS (SELECT FROM public.aliases a WHERE a.domain = n.domain))
     ORDER BY n.domain LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % cannot become an alias domain: it has mailboxes or aliases', public.quoted(bad.domain)
              USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_NAME;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER transports_alias_domains AFTER INSERT ON public.transports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_alias_domain_misuse();
CREATE TRIGGER transports_alias_domains_on_update AFTER UPDATE ON public.transports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_alias_domain_misuse();

-- 0013's check for users and aliases, now also refusing alias domains
CREATE OR REPLACE FUNCTION public.refuse_unhosted_domains() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    needed  text[];
    missing text;
    target  text;
BEGIN
    -- one pass over the new rows (a million of them, in an import), then only the few
    -- domains they name
    SELECT array_agg(d.domain) INTO needed FROM (SELECT DISTINCT n.domain FROM new_rows n) d;
    PERFORM FROM public.transports t
     WHERE t.domain = ANY (needed)
     ORDER BY t.domain
       FOR SHARE OF t;
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
    SELECT t.domain, t.alias_of INTO missing, target
      FROM public.transports t
     WHERE t.domain = ANY (needed) AND t.alias_of IS NOT NULL
     ORDER BY t.domain
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % is an alias domain of %', public.quoted(missing), public.quoted(target)
              USING ERRCODE = 'foreign_key_violation', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                    CONSTRAINT = TG_NAME, HINT = format('add it in %s instead', target);
    END IF;
    RETURN NULL;
END
$$;

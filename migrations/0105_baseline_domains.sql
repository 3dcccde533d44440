-- transports: the domains this server knows, under the tutorial's table name so its map
-- query keeps working. A row is one of three kinds:
-- * a mailbox domain (transport virtual:): mailboxes and aliases live in it;
-- * an alias domain (alias_of names its target, a mailbox domain): x@alias reaches
--   x@target for each mailbox and alias there, and nothing else; an address the target
--   does not know is refused at RCPT time (no wildcard that accepts and bounces later).
--   Being a row of transports, a name is hosted or an alias, never both (the primary
--   key), and the maps, enable/disable, the audit log and `domain list` treat it alike;
-- * a relay or backup-MX domain (smtp: or relay:): accepted and passed on to its next
--   hop (relay_domains), never delivered into a mailbox, so it holds none.
-- gid is optional (NULL: the static virtual_gid_maps/Dovecot gid applies); the
-- tutorial's "gid INTEGER UNIQUE NOT NULL" allowed one domain per vmail group.
-- A domain may keep services from all its mailboxes (disabled_services) and cap how many
-- mailboxes and aliases it holds and the sum of their byte quotas (max_*; NULL: no cap).
--
-- A mailbox's or alias's domain must be a hosted mailbox domain, and a domain cannot go
-- while mailboxes or aliases use it. Statement triggers say so rather than foreign keys:
-- a foreign key checks each new row with a query and a row lock of its own (2.0 s of a
-- 200,000-mailbox import); the triggers check each statement's rows at once from its
-- transition table (0.24 s for 1,000,000). The guarantees:
-- * INSERT or UPDATE of users or aliases: the domains the rows name are locked FOR
--   SHARE, then a row whose domain is missing (23503) or an alias domain (23503) is
--   refused; a concurrent DELETE or change of one of those domains waits for us.
-- * DELETE of a domain, or UPDATE of its name: refused (23503) while users or aliases
--   rows name it. The check runs after the domain row is locked, so at READ COMMITTED
--   its fresh snapshot shows every transaction that held the domain locked; at
--   REPEATABLE READ or SERIALIZABLE the older snapshot may not (a foreign key uses a
--   cross-check snapshot, a trigger cannot), so there a domain cannot be removed or
--   renamed (0A000).
-- * TRUNCATE of transports without users and aliases in the same statement, while they
--   have rows: refused (23503), as a foreign key refuses it.
-- The caps are kept by triggers too, so the API, `mailbook import` and the owner's DML
-- all meet them; sessions adding to the same capped domain take turns (an advisory lock
-- per domain, in name order), so two cannot both take the last place. Lowering a cap
-- below what a domain holds is allowed: it stops further additions.
-- depends: 0104_baseline_settings

CREATE TABLE public.transports (
    domain            text PRIMARY KEY
                      CONSTRAINT transports_domain_valid CHECK (public.domain_name_error(domain) IS NULL),
    gid               integer
                      CONSTRAINT transports_gid_positive CHECK (gid > 0),
    transport         text NOT NULL DEFAULT 'virtual:'
                      CONSTRAINT transports_transport_valid CHECK (public.transport_error(transport) IS NULL),
    active            boolean NOT NULL DEFAULT true,
    created           timestamptz NOT NULL DEFAULT now(),
    modified          timestamptz NOT NULL DEFAULT now(),
    alias_of          text
                      CONSTRAINT transports_alias_of_hosted REFERENCES public.transports (domain),
    -- the tables check with the containment operator, not service_list_error(): a SQL
    -- function per row cost a bulk import 4 us a row; the API validates first, for the
    -- message
    disabled_services text[] NOT NULL DEFAULT '{}'
                      CONSTRAINT transports_disabled_services_known
                      CHECK (disabled_services <@ ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']),
    max_mailboxes     integer
                      CONSTRAINT transports_max_mailboxes_not_negative CHECK (max_mailboxes >= 0),
    max_aliases       integer
                      CONSTRAINT transports_max_aliases_not_negative CHECK (max_aliases >= 0),
    max_quota_bytes   bigint
                      CONSTRAINT transports_max_quota_bytes_positive CHECK (max_quota_bytes > 0),
    CONSTRAINT transports_alias_not_itself CHECK (alias_of <> domain),
    -- an alias domain is delivered by rewriting to its target: only virtual: fits
    CONSTRAINT transports_alias_is_virtual CHECK (alias_of IS NULL OR transport = 'virtual:')
);
COMMENT ON TABLE public.transports IS
'One row per domain this server knows: a mailbox domain (transport virtual:), an alias domain of one (alias_of), or a relay domain whose mail is passed on (any other transport, e.g. smtp:[mx.example.net]). Change it with add_domain(), add_alias_domain(), set_domain_active(), set_domain_service(), set_domain_limits(), remove_domain().';
COMMENT ON COLUMN public.transports.domain IS 'The domain, lower case, e.g. example.com.';
COMMENT ON COLUMN public.transports.gid IS 'Group id that owns this domain''s mail on disk (virtual_gid_maps); NULL: the vmail group.';
COMMENT ON COLUMN public.transports.transport IS 'Postfix transport: virtual: for mailboxes here (left to virtual_transport), anything else relays.';
COMMENT ON COLUMN public.transports.active IS 'false: the domain''s mail is refused and its users cannot log in.';
COMMENT ON COLUMN public.transports.created IS 'When the row was added.';
COMMENT ON COLUMN public.transports.modified IS 'When the row last changed.';
COMMENT ON COLUMN public.transports.alias_of IS 'For an alias domain, the mailbox domain it stands for: x@this reaches x@alias_of.';
COMMENT ON COLUMN public.transports.disabled_services IS 'Services no address of the domain may use: imap, pop3, smtp, submission, sieve.';
COMMENT ON COLUMN public.transports.max_mailboxes IS 'At most this many mailboxes; NULL: no cap.';
COMMENT ON COLUMN public.transports.max_aliases IS 'At most this many alias addresses; NULL: no cap.';
COMMENT ON COLUMN public.transports.max_quota_bytes IS 'The sum of its mailboxes'' quotas may not exceed this; NULL: no cap.';

-- the alias domains of a target (remove_domain, the target's checks)
CREATE INDEX transports_alias_of_idx ON public.transports (alias_of) WHERE alias_of IS NOT NULL;

-- is_relay_transport(transport): smtp: and relay: pass mail on; the others deliver here.
CREATE FUNCTION public.is_relay_transport(transport text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT transport LIKE 'smtp:%' OR transport LIKE 'relay:%'
$f$;
COMMENT ON FUNCTION public.is_relay_transport(text) IS 'Whether a transport relays (anything but virtual:).';
REVOKE ALL ON FUNCTION public.is_relay_transport(text) FROM PUBLIC;
-- mailreader: postfix-maps/relay-domains.cf calls it
GRANT EXECUTE ON FUNCTION public.is_relay_transport(text) TO mailadmin, mailreader;

-- What a foreign key and CHECKs cannot say about alias domains: the target is a mailbox
-- domain, not itself an alias (no chains), and stays one while aliased (its row is
-- locked FOR SHARE before the check, which then sees what a concurrent change
-- committed); an alias domain holds no mailboxes or aliases (they live in the target).
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
COMMENT ON FUNCTION public.refuse_alias_domain_misuse() IS 'Trigger: no mailbox or alias inside an alias domain, and no alias domain of an alias domain.';

CREATE TRIGGER transports_alias_domains AFTER INSERT ON public.transports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_alias_domain_misuse();
CREATE TRIGGER transports_alias_domains_on_update AFTER UPDATE ON public.transports
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_alias_domain_misuse();

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
COMMENT ON FUNCTION public.refuse_orphaning_domains() IS 'Trigger: a domain with mailboxes or aliases cannot go (remove_domain(..., true) takes them along).';

CREATE TRIGGER transports_keep_used_domains AFTER DELETE ON public.transports
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_orphaning_domains();
CREATE TRIGGER transports_keep_used_domains_on_update AFTER UPDATE ON public.transports
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_orphaning_domains();
CREATE TRIGGER transports_keep_used_domains_on_truncate AFTER TRUNCATE ON public.transports
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_orphaning_domains();

-- The checks users and aliases attach (0106, 0107): hosted domains, caps, relay domains.
-- refuse_unhosted_domains(): AFTER INSERT/UPDATE ... FOR EACH STATEMENT on a table with
-- a domain column, its new rows as new_rows.
CREATE FUNCTION public.refuse_unhosted_domains() RETURNS trigger
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
COMMENT ON FUNCTION public.refuse_unhosted_domains() IS 'Trigger: a mailbox or alias must be in a hosted domain.';

-- refuse_over_domain_limits(): AFTER INSERT / UPDATE ... FOR EACH STATEMENT on users
-- and aliases, with the statement's new rows as new_rows. Checks only domains that the
-- statement touched and that have a cap, so domains without caps cost one probe.
CREATE FUNCTION public.refuse_over_domain_limits() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    capped text[];
    bad    record;
BEGIN
    IF NOT EXISTS (SELECT FROM public.transports t
                    WHERE t.max_mailboxes IS NOT NULL OR t.max_aliases IS NOT NULL
                       OR t.max_quota_bytes IS NOT NULL) THEN
        RETURN NULL;  -- the common case: nobody has caps
    END IF;
    SELECT array_agg(DISTINCT t.domain ORDER BY t.domain) INTO capped
      FROM new_rows n JOIN public.transports t ON t.domain = n.domain
     WHERE CASE TG_TABLE_NAME WHEN 'users' THEN t.max_mailboxes IS NOT NULL OR t.max_quota_bytes IS NOT NULL
                              ELSE t.max_aliases IS NOT NULL END;
    IF capped IS NULL THEN
        RETURN NULL;
    END IF;
    -- one at a time per capped domain, in name order (no deadlock between two imports)
    PERFORM pg_advisory_xact_lock(hashtextextended('mailbook.domain_limits:' || d, 0))
       FROM unnest(capped) AS d ORDER BY d;
    IF TG_TABLE_NAME = 'users' THEN
        -- "unlimited": this statement's rows without a byte quota (rows that had none
        -- before the cap was set keep it until they are changed)
        SELECT t.domain, t.max_mailboxes, t.max_quota_bytes, count(*) AS mailboxes,
               sum(u.quota_bytes) AS quota,
               (SELECT count(*) FROM new_rows n WHERE n.domain = t.domain AND n.quota_bytes IS NULL) AS unlimited
          INTO bad
          FROM public.transports t JOIN public.users u ON u.domain = t.domain
         WHERE t.domain = ANY (capped)
         GROUP BY t.domain
        HAVING count(*) > t.max_mailboxes
            OR (t.max_quota_bytes IS NOT NULL
                AND (sum(u.quota_bytes) > t.max_quota_bytes
                     OR EXISTS (SELECT FROM new_rows n WHERE n.domain = t.domain AND n.quota_bytes IS NULL)))
         ORDER BY t.domain LIMIT 1;
        IF FOUND AND bad.mailboxes > bad.max_mailboxes THEN
            RAISE EXCEPTION 'domain % allows at most % mailbox(es)', public.quoted(bad.domain), bad.max_mailboxes
                  USING ERRCODE = '23514',
                        HINT = 'raise the cap with set_domain_limits() (mailbook domain limits)';
        ELSIF FOUND AND bad.unlimited > 0 THEN
            RAISE EXCEPTION 'domain % caps its total quota at % bytes, so a mailbox added or changed there needs a quota',
                  public.quoted(bad.domain), bad.max_quota_bytes
                  USING ERRCODE = '23514', HINT = 'give the mailbox a quota_bytes';
        ELSIF FOUND THEN
            RAISE EXCEPTION 'domain % caps its total quota at % bytes; its mailboxes would have %',
                  public.quoted(bad.domain), bad.max_quota_bytes, bad.quota
                  USING ERRCODE = '23514',
                        HINT = 'raise the cap with set_domain_limits() (mailbook domain limits)';
        END IF;
    ELSE
        SELECT t.domain, t.max_aliases, count(DISTINCT a.alias) AS aliases INTO bad
          FROM public.transports t JOIN public.aliases a ON a.domain = t.domain
         WHERE t.domain = ANY (capped)
         GROUP BY t.domain
        HAVING count(DISTINCT a.alias) > t.max_aliases
         ORDER BY t.domain LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'domain % allows at most % alias(es)', public.quoted(bad.domain), bad.max_aliases
                  USING ERRCODE = '23514',
                        HINT = 'raise the cap with set_domain_limits() (mailbook domain limits)';
        END IF;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.refuse_over_domain_limits() IS 'Trigger: a domain''s caps (max_mailboxes, max_aliases, max_quota_bytes) hold.';

-- refuse_mailboxes_in_relay_domains(): AFTER INSERT/UPDATE ... FOR EACH STATEMENT on
-- users (new mailboxes) and on transports (changed transports), over new_rows.
CREATE FUNCTION public.refuse_mailboxes_in_relay_domains() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        -- most servers relay nothing: then a bulk import pays one probe, not a join
        IF NOT EXISTS (SELECT FROM public.transports t WHERE public.is_relay_transport(t.transport)) THEN
            RETURN NULL;
        END IF;
        SELECT n.email, t.domain, t.transport INTO bad
          FROM new_rows n JOIN public.transports t ON t.domain = n.domain
         WHERE public.is_relay_transport(t.transport)
         LIMIT 1;
    ELSE
        SELECT u.email, n.domain, n.transport INTO bad
          FROM new_rows n JOIN public.users u ON u.domain = n.domain
         WHERE public.is_relay_transport(n.transport)
         LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % is relayed to %, so it holds no mailboxes (%)',
              public.quoted(bad.domain), public.quoted(bad.transport), public.quoted(bad.email)
              USING ERRCODE = '23514',
                    HINT = 'a relay or backup-MX domain passes its mail on; keep mailboxes in a virtual: domain';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.refuse_mailboxes_in_relay_domains() IS 'Trigger: no mailbox in a relay domain.';

REVOKE ALL ON FUNCTION public.refuse_unhosted_domains(), public.refuse_orphaning_domains() FROM PUBLIC;

-- a domain turned into a relay domain must hold no mailboxes
CREATE TRIGGER relay_domains_hold_no_mailboxes AFTER UPDATE ON public.transports
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_mailboxes_in_relay_domains();

-- audit (0103): key the domain
CREATE TRIGGER audit_insert AFTER INSERT ON public.transports
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('domain');
CREATE TRIGGER audit_delete AFTER DELETE ON public.transports
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('domain');
CREATE TRIGGER audit_update AFTER UPDATE ON public.transports
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('domain');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.transports
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

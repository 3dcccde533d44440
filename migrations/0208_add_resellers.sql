-- Delegated administration, step two (issue 32): resellers, and a cap on the largest
-- mailbox quota of a domain.
-- * A reseller is a scoped admin (0207) with a row here: it may also create domains
--   (each enters its scope in the same transaction), alias domains of its own domains,
--   remove and enable/disable them, cap them, and hand them to sub-admins
--   (sql/api/30_domains.sql, 35_scopes.sql). Set by the DBA or a mailadmin with
--   make_reseller()/unmake_reseller(); audited like every mail table.
-- * Its limits (NULL: no cap): max_domains counts the rows of admin_scopes it holds (its
--   alias domains ride on their targets, hold nothing and are not counted);
--   max_mailboxes and max_quota_bytes count the mailboxes of those domains and the sum
--   of their byte quotas; under a quota cap a mailbox without a quota (unlimited) is
--   refused, as under a domain's cap (0105).
-- * They bind everyone, mailadmin and the owner's own DML included: they are a contract
--   with the customer, which a mailadmin changes by changing the limit, not by going
--   around it. Like a domain's caps, a limit lowered below what a reseller holds is
--   allowed and stops further additions only: a statement is refused when it adds to a
--   total that then exceeds its cap (a password change in a full domain still works).
-- * Race-free: triggers, so the API, import_batch and direct INSERTs all meet them.
--   Sessions that add to one reseller take turns on an advisory lock per reseller, then
--   count with a fresh snapshot (READ COMMITTED: each statement of a trigger sees what the
--   session before it committed). A mailbox statement first locks its domains' rows FOR
--   SHARE, and giving a domain to a reseller locks that row FOR NO KEY UPDATE, so a
--   domain cannot join a reseller unseen by a concurrent mailbox insert there. At
--   REPEATABLE READ the snapshot is older than the lock: a statement that a reseller's
--   cap governs is refused there (0A000); SERIALIZABLE catches the conflict itself.
-- * transports.max_mailbox_quota_bytes: no single mailbox of the domain may have a larger
--   quota, nor none at all; a per-row rule, checked by a statement trigger like the rest.
-- Read by no service role: Postfix's and Dovecot's lookups never consult these, and a
-- statement on users in a server with no reseller and no such cap pays one probe each.
-- depends: 0207_add_admin_scopes

CREATE TABLE public.resellers (
    admin           name PRIMARY KEY,
    max_domains     integer
                    CONSTRAINT resellers_max_domains_not_negative CHECK (max_domains >= 0),
    max_mailboxes   integer
                    CONSTRAINT resellers_max_mailboxes_not_negative CHECK (max_mailboxes >= 0),
    max_quota_bytes bigint
                    CONSTRAINT resellers_max_quota_bytes_positive CHECK (max_quota_bytes > 0),
    created         timestamptz NOT NULL DEFAULT now(),
    modified        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.resellers IS
'Scoped admins that may also create domains, within limits. Change it with make_reseller() and unmake_reseller(); read it with resellers().';
COMMENT ON COLUMN public.resellers.admin IS 'The login role (session_user), a member of maildomainadmin.';
COMMENT ON COLUMN public.resellers.max_domains IS 'At most this many domains in its scope (admin_scopes rows); NULL: no cap.';
COMMENT ON COLUMN public.resellers.max_mailboxes IS 'At most this many mailboxes across its domains; NULL: no cap.';
COMMENT ON COLUMN public.resellers.max_quota_bytes IS 'The quotas of the mailboxes across its domains add up to at most this (each needs one); NULL: no cap.';
COMMENT ON COLUMN public.resellers.created IS 'When it was made a reseller.';
COMMENT ON COLUMN public.resellers.modified IS 'When its limits last changed.';

CREATE TRIGGER audit_insert AFTER INSERT ON public.resellers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('admin');
CREATE TRIGGER audit_delete AFTER DELETE ON public.resellers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('admin');
CREATE TRIGGER audit_update AFTER UPDATE ON public.resellers
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('admin');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.resellers
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

ALTER TABLE public.transports ADD COLUMN max_mailbox_quota_bytes bigint
    CONSTRAINT transports_max_mailbox_quota_bytes_positive CHECK (max_mailbox_quota_bytes > 0);
COMMENT ON COLUMN public.transports.max_mailbox_quota_bytes IS
'No mailbox of the domain may have a larger byte quota, nor none; NULL: no cap.';

-- refuse_over_reseller_limits(): AFTER INSERT / UPDATE ... FOR EACH STATEMENT on users
-- (new rows as new_rows; on UPDATE old rows as old_rows too) and on admin_scopes (new
-- rows as new_rows). Checks only the resellers whose domains the statement adds to.
CREATE FUNCTION public.refuse_over_reseller_limits() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    domains text[];
    capped  name[];
    bad     record;
BEGIN
    IF NOT EXISTS (SELECT FROM public.resellers r
                    WHERE r.max_domains IS NOT NULL OR r.max_mailboxes IS NOT NULL OR r.max_quota_bytes IS NOT NULL) THEN
        RETURN NULL;  -- the common case: no reseller has a cap
    END IF;
    SELECT array_agg(DISTINCT n.domain ORDER BY n.domain) INTO domains FROM new_rows n;
    IF domains IS NULL THEN
        RETURN NULL;
    END IF;
    -- the domains first: a mailbox statement shares them, a grant takes them alone, so
    -- neither can miss the other (and always in name order, so no deadlock)
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM FROM public.transports t WHERE t.domain = ANY (domains) ORDER BY t.domain FOR SHARE OF t;
    ELSE
        PERFORM FROM public.transports t WHERE t.domain = ANY (domains) ORDER BY t.domain FOR NO KEY UPDATE OF t;
    END IF;
    SELECT array_agg(DISTINCT r.admin ORDER BY r.admin) INTO capped
      FROM public.resellers r JOIN public.admin_scopes s ON s.admin = r.admin
     WHERE s.domain = ANY (domains)
       AND CASE TG_TABLE_NAME WHEN 'users' THEN r.max_mailboxes IS NOT NULL OR r.max_quota_bytes IS NOT NULL
                              ELSE true END
       AND (r.max_domains IS NOT NULL OR r.max_mailboxes IS NOT NULL OR r.max_quota_bytes IS NOT NULL);
    IF capped IS NULL THEN
        RETURN NULL;
    END IF;
    IF current_setting('transaction_isolation') = 'repeatable read' THEN
        RAISE EXCEPTION 'a reseller''s limits are checked at READ COMMITTED or SERIALIZABLE, not at REPEATABLE READ'
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'This snapshot might not show what concurrent transactions added for reseller '
                             || public.quoted(capped[1]) || '.';
    END IF;
    -- one session at a time per reseller, in name order
    PERFORM pg_advisory_xact_lock(hashtextextended('mailbook.reseller_limits:' || a, 0))
       FROM unnest(capped) AS a ORDER BY a;

    IF TG_TABLE_NAME = 'admin_scopes' THEN
        -- what the reseller holds now, and what the domains just given bring along
        SELECT * INTO bad FROM (
            SELECT r.admin, r.max_domains, r.max_mailboxes, r.max_quota_bytes,
                   (SELECT count(*) FROM public.admin_scopes s WHERE s.admin = r.admin) AS held,
                   (SELECT count(*) FROM new_rows n WHERE n.admin = r.admin) AS added,
                   (SELECT count(*) FROM public.users x
                     WHERE x.domain IN (SELECT s.domain FROM public.admin_scopes s WHERE s.admin = r.admin)) AS mailboxes,
                   (SELECT coalesce(sum(x.quota_bytes), 0) FROM public.users x
                     WHERE x.domain IN (SELECT s.domain FROM public.admin_scopes s WHERE s.admin = r.admin)) AS quota,
                   b.mailboxes AS added_mailboxes, b.quota AS added_quota, b.unlimited AS added_unlimited
              FROM public.resellers r
             CROSS JOIN LATERAL (SELECT count(*) AS mailboxes, coalesce(sum(x.quota_bytes), 0) AS quota,
                                        count(*) FILTER (WHERE x.quota_bytes IS NULL) AS unlimited
                                   FROM public.users x
                                  WHERE x.domain IN (SELECT n.domain FROM new_rows n WHERE n.admin = r.admin)) b
             WHERE r.admin = ANY (capped) AND r.admin IN (SELECT n.admin FROM new_rows n)) c
         WHERE c.held > c.max_domains
            OR (c.added_mailboxes > 0 AND c.mailboxes > c.max_mailboxes)
            OR (c.max_quota_bytes IS NOT NULL AND (c.added_unlimited > 0 OR (c.added_quota > 0 AND c.quota > c.max_quota_bytes)))
         ORDER BY c.admin LIMIT 1;
        IF FOUND AND bad.held > bad.max_domains THEN
            RAISE EXCEPTION 'reseller % allows at most % domain(s) and has % already',
                  public.quoted(bad.admin), bad.max_domains, bad.held - bad.added
                  USING ERRCODE = '23514', HINT = 'a mailadmin raises the limit with make_reseller() (mailbook admin reseller)';
        ELSIF FOUND AND bad.mailboxes > bad.max_mailboxes THEN
            RAISE EXCEPTION 'reseller % allows at most % mailbox(es): it has % and the domain(s) would add %',
                  public.quoted(bad.admin), bad.max_mailboxes, bad.mailboxes - bad.added_mailboxes, bad.added_mailboxes
                  USING ERRCODE = '23514', HINT = 'a mailadmin raises the limit with make_reseller() (mailbook admin reseller)';
        ELSIF FOUND AND bad.added_unlimited > 0 THEN
            RAISE EXCEPTION 'reseller % caps its total quota at % bytes, so each mailbox of its domains needs a quota; % of the domain(s) given have none',
                  public.quoted(bad.admin), bad.max_quota_bytes, bad.added_unlimited
                  USING ERRCODE = '23514', HINT = 'give those mailboxes a quota_bytes first';
        ELSIF FOUND THEN
            RAISE EXCEPTION 'reseller % caps its total quota at % bytes: its mailboxes have % and the domain(s) would add %',
                  public.quoted(bad.admin), bad.max_quota_bytes, bad.quota - bad.added_quota, bad.added_quota
                  USING ERRCODE = '23514', HINT = 'a mailadmin raises the limit with make_reseller() (mailbook admin reseller)';
        END IF;
        RETURN NULL;
    END IF;

    -- users: what this statement adds, per reseller; an UPDATE subtracts its old rows, and
    -- a row without a quota counts as "unlimited" only if it had one (or another domain)
    -- before. Dynamic only because old_rows exists in an UPDATE alone.
    EXECUTE format($q$
        WITH changes AS (%s),
             delta AS (SELECT ch.admin, sum(ch.sign) AS added, sum(ch.sign * coalesce(ch.quota_bytes, 0)) AS added_quota,
                              count(*) FILTER (WHERE ch.unlimited) AS unlimited
                         FROM changes ch GROUP BY ch.admin)
        SELECT r.admin, r.max_mailboxes, r.max_quota_bytes, d.added, d.added_quota, d.unlimited, u.mailboxes, u.quota
          FROM public.resellers r JOIN delta d ON d.admin = r.admin
         CROSS JOIN LATERAL (SELECT count(*) AS mailboxes, coalesce(sum(x.quota_bytes), 0) AS quota
                               FROM public.users x
                              WHERE x.domain IN (SELECT s.domain FROM public.admin_scopes s WHERE s.admin = r.admin)) u
         WHERE (d.added > 0 AND u.mailboxes > r.max_mailboxes)
            OR (r.max_quota_bytes IS NOT NULL AND (d.unlimited > 0 OR (d.added_quota > 0 AND u.quota > r.max_quota_bytes)))
         ORDER BY r.admin LIMIT 1 $q$,
        CASE TG_OP WHEN 'INSERT' THEN
            $c$SELECT s.admin, 1 AS sign, n.quota_bytes, n.quota_bytes IS NULL AS unlimited
                 FROM new_rows n JOIN public.admin_scopes s ON s.domain = n.domain WHERE s.admin = ANY ($1)$c$
        ELSE
            $c$SELECT s.admin, 1 AS sign, n.quota_bytes,
                      n.quota_bytes IS NULL AND NOT EXISTS (SELECT FROM old_rows o WHERE o.email = n.email
                                                              AND o.domain = n.domain AND o.quota_bytes IS NULL) AS unlimited
                 FROM new_rows n JOIN public.admin_scopes s ON s.domain = n.domain WHERE s.admin = ANY ($1)
               UNION ALL
               SELECT s.admin, -1, o.quota_bytes, false
                 FROM old_rows o JOIN public.admin_scopes s ON s.domain = o.domain WHERE s.admin = ANY ($1)$c$
        END)
    INTO bad USING capped;
    IF bad.admin IS NULL THEN
        RETURN NULL;
    ELSIF bad.added > 0 AND bad.mailboxes > bad.max_mailboxes THEN
        RAISE EXCEPTION 'reseller % allows at most % mailbox(es) across its domains and has % already',
              public.quoted(bad.admin), bad.max_mailboxes, bad.mailboxes - bad.added
              USING ERRCODE = '23514', HINT = 'a mailadmin raises the limit with make_reseller() (mailbook admin reseller)';
    ELSIF bad.unlimited > 0 THEN
        RAISE EXCEPTION 'reseller % caps its total quota at % bytes, so a mailbox added or changed in its domains needs a quota',
              public.quoted(bad.admin), bad.max_quota_bytes
              USING ERRCODE = '23514', HINT = 'give the mailbox a quota_bytes';
    ELSE
        RAISE EXCEPTION 'reseller % caps its total quota at % bytes; its mailboxes have % and would have %',
              public.quoted(bad.admin), bad.max_quota_bytes, bad.quota - bad.added_quota, bad.quota
              USING ERRCODE = '23514', HINT = 'a mailadmin raises the limit with make_reseller() (mailbook admin reseller)';
    END IF;
END
$$;
COMMENT ON FUNCTION public.refuse_over_reseller_limits() IS 'Trigger: a reseller''s limits (max_domains, max_mailboxes, max_quota_bytes) hold.';

CREATE TRIGGER reseller_limits_on_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_reseller_limits();
CREATE TRIGGER reseller_limits_on_update AFTER UPDATE ON public.users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_reseller_limits();
CREATE TRIGGER reseller_limits_on_insert AFTER INSERT ON public.admin_scopes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_reseller_limits();
CREATE TRIGGER reseller_limits_on_update AFTER UPDATE ON public.admin_scopes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_reseller_limits();

-- refuse_oversized_mailboxes(): AFTER INSERT / UPDATE ... FOR EACH STATEMENT on users,
-- new rows as new_rows (and old rows as old_rows on UPDATE: a row whose domain and quota
-- stay as they were is not checked again, as a cap lowered binds additions only).
CREATE FUNCTION public.refuse_oversized_mailboxes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    IF NOT EXISTS (SELECT FROM public.transports t WHERE t.max_mailbox_quota_bytes IS NOT NULL) THEN
        RETURN NULL;  -- the common case: no domain has this cap
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT n.email, n.quota_bytes, t.domain, t.max_mailbox_quota_bytes INTO bad
          FROM new_rows n JOIN public.transports t ON t.domain = n.domain
         WHERE t.max_mailbox_quota_bytes IS NOT NULL
           AND (n.quota_bytes IS NULL OR n.quota_bytes > t.max_mailbox_quota_bytes)
         ORDER BY n.email LIMIT 1;
    ELSE
        SELECT n.email, n.quota_bytes, t.domain, t.max_mailbox_quota_bytes INTO bad
          FROM new_rows n JOIN public.transports t ON t.domain = n.domain
         WHERE t.max_mailbox_quota_bytes IS NOT NULL
           AND (n.quota_bytes IS NULL OR n.quota_bytes > t.max_mailbox_quota_bytes)
           AND NOT EXISTS (SELECT FROM old_rows o WHERE o.email = n.email AND o.domain = n.domain
                                                    AND o.quota_bytes IS NOT DISTINCT FROM n.quota_bytes)
         ORDER BY n.email LIMIT 1;
    END IF;
    IF FOUND AND bad.quota_bytes IS NULL THEN
        RAISE EXCEPTION 'domain % caps each mailbox''s quota at % bytes, so mailbox % needs a quota',
              public.quoted(bad.domain), bad.max_mailbox_quota_bytes, public.quoted(bad.email)
              USING ERRCODE = '23514', HINT = 'give the mailbox a quota_bytes';
    ELSIF FOUND THEN
        RAISE EXCEPTION 'domain % caps each mailbox''s quota at % bytes; mailbox % would have %',
              public.quoted(bad.domain), bad.max_mailbox_quota_bytes, public.quoted(bad.email), bad.quota_bytes
              USING ERRCODE = '23514', HINT = 'raise the cap with set_domain_limits() (mailbook domain limits)';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.refuse_oversized_mailboxes() IS 'Trigger: a domain''s max_mailbox_quota_bytes holds for each mailbox added or changed.';

CREATE TRIGGER mailbox_quota_cap_on_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_oversized_mailboxes();
CREATE TRIGGER mailbox_quota_cap_on_update AFTER UPDATE ON public.users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_oversized_mailboxes();

REVOKE ALL ON FUNCTION public.refuse_over_reseller_limits(), public.refuse_oversized_mailboxes() FROM PUBLIC;

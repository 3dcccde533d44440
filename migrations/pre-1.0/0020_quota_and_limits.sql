-- Quotas and per-domain limits.
-- A mailbox's quota may count messages too (users.quota_messages), handed to Dovecot's
-- userdb with the byte limit as quota_rule. A domain may cap how many mailboxes and
-- aliases it holds and the sum of its mailboxes' byte quotas (NULL: no cap). The caps
-- are enforced here, by statement-level triggers, so the API, `mailbook import` and the
-- owner's own DML all meet them; the API adds nothing but a clear message.
-- Concurrent sessions adding to the same capped domain take turns (an advisory lock per
-- domain, taken in name order), so two of them cannot both take the last place.
-- Lowering a cap below what a domain holds is allowed: it stops further additions.
-- depends: 0019_per_service_access

ALTER TABLE public.users
    ADD COLUMN quota_messages bigint
        CONSTRAINT users_quota_messages_positive CHECK (quota_messages > 0);
COMMENT ON COLUMN public.users.quota_messages IS 'Dovecot quota in messages; NULL means no limit';

ALTER TABLE public.transports
    ADD COLUMN max_mailboxes integer
        CONSTRAINT transports_max_mailboxes_not_negative CHECK (max_mailboxes >= 0),
    ADD COLUMN max_aliases integer
        CONSTRAINT transports_max_aliases_not_negative CHECK (max_aliases >= 0),
    ADD COLUMN max_quota_bytes bigint
        CONSTRAINT transports_max_quota_bytes_positive CHECK (max_quota_bytes > 0);
COMMENT ON COLUMN public.transports.max_mailboxes IS 'At most this many mailboxes; NULL: no cap';
COMMENT ON COLUMN public.transports.max_aliases IS 'At most this many alias addresses (a catch-all counts); NULL: no cap';
COMMENT ON COLUMN public.transports.max_quota_bytes IS
    'The mailboxes'' byte quotas may add up to this much, and each must then have one; NULL: no cap';

-- the listing view shows them (new last columns)
CREATE OR REPLACE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified, disabled_services, quota_messages
  FROM public.users;

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

CREATE TRIGGER domain_limits_on_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();
CREATE TRIGGER domain_limits_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();
CREATE TRIGGER domain_limits_on_insert AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();
CREATE TRIGGER domain_limits_on_update AFTER UPDATE ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();

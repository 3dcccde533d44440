-- Undo 0016. Refused while alias domains exist: dropping alias_of would silently turn
-- them into hosted domains with no mailboxes.
DO $$
BEGIN
    IF EXISTS (SELECT FROM public.transports WHERE alias_of IS NOT NULL) THEN
        RAISE EXCEPTION 'alias domains exist; remove them (remove_domain) before rolling back 0016'
              USING ERRCODE = '55000';
    END IF;
END
$$;

DROP TRIGGER transports_alias_domains ON public.transports;
DROP TRIGGER transports_alias_domains_on_update ON public.transports;
DROP FUNCTION public.refuse_alias_domain_misuse();
ALTER TABLE public.transports DROP COLUMN alias_of;

-- 0013's hosted-domain check, as it was
CREATE OR REPLACE FUNCTION public.refuse_unhosted_domains() RETURNS trigger
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

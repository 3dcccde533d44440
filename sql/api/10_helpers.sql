-- Helpers the API functions share. SECURITY DEFINER like the rest of the API (so they
-- are dropped and re-created with it) but granted to nobody: only the API calls them.

-- assert_valid(problem): raise a *_error() sentence as an error. NULL means no problem.
-- SQLSTATE 22004 (null_value_not_allowed) for a missing value, else 22023
-- (invalid_parameter_value).
CREATE FUNCTION public.assert_valid(problem text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = problem,
            ERRCODE = CASE WHEN problem LIKE '%must not be NULL' THEN '22004' ELSE '22023' END;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.assert_valid(text) FROM PUBLIC;

-- assert_hosted(domain): the domain must be a row in transports.
CREATE FUNCTION public.assert_hosted(domain text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM public.transports t WHERE t.domain = assert_hosted.domain) THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(assert_hosted.domain)
              USING ERRCODE = '23503',
                    HINT = format('call add_domain(%L) first', assert_hosted.domain);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.assert_hosted(text) FROM PUBLIC;

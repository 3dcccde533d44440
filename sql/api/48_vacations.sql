-- Out-of-office replies (table vacations, 0061). Dovecot's Sieve reads the generated
-- script through the view sieve_scripts while a reply is due; nothing else is needed.

-- set_vacation(email, subject, body, starts, ends, days) -> vacations
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook vacation set`). Runs as mailowner.
-- Sets (or replaces) the mailbox's reply: sent between starts (default now) and ends
-- (default never), at most once per sender every `days` days (default 7, 1..365).
-- Raises P0002 for an unknown mailbox, 22004/22023 for an empty or unsafe subject or
-- body (control characters; a subject is one line), 22023 for days out of range or
-- ends not after starts.
CREATE FUNCTION public.set_vacation(email text, subject text, body text, starts timestamptz DEFAULT NULL,
                                    ends timestamptz DEFAULT NULL, days integer DEFAULT NULL)
RETURNS public.vacations
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(set_vacation.email);
    since   timestamptz := coalesce(set_vacation.starts, now());
    every   integer := coalesce(set_vacation.days, 7);
    result  public.vacations;
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    IF subject IS NULL OR body IS NULL THEN
        RAISE EXCEPTION 'a vacation %s must not be NULL', CASE WHEN subject IS NULL THEN 'subject' ELSE 'body' END
              USING ERRCODE = '22004';
    END IF;
    PERFORM public.assert_valid(public.vacation_text_error(subject, false));
    PERFORM public.assert_valid(public.vacation_text_error(body, true));
    IF every NOT BETWEEN 1 AND 365 THEN
        RAISE EXCEPTION 'a vacation reply repeats every 1 to 365 days, not %', every USING ERRCODE = '22023';
    END IF;
    IF ends <= since THEN
        RAISE EXCEPTION 'a vacation must end after it starts, not % before %', ends, since USING ERRCODE = '22023';
    END IF;
    -- FOR SHARE: a concurrent remove_mailbox waits, so no reply outlives its mailbox
    PERFORM FROM public.users u WHERE u.email = address FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO public.vacations AS v (email, subject, body, starts, ends, days)
    VALUES (address, set_vacation.subject, set_vacation.body, since, set_vacation.ends, every)
    ON CONFLICT ON CONSTRAINT vacations_pkey DO UPDATE
       SET subject = excluded.subject, body = excluded.body, starts = excluded.starts, ends = excluded.ends,
           days = excluded.days, modified = now()
    RETURNING * INTO result;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_vacation(text, text, text, timestamptz, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_vacation(text, text, text, timestamptz, timestamptz, integer) TO mailadmin, maildomainadmin;

-- clear_vacation(email) -> boolean (whether a reply was set)
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook vacation clear`). Replies stop with
-- the next delivery. Raises P0002 for an unknown mailbox.
CREATE FUNCTION public.clear_vacation(email text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(clear_vacation.email);
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    IF NOT EXISTS (SELECT FROM public.users u WHERE u.email = address) THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    DELETE FROM public.vacations v WHERE v.email = address;
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION public.clear_vacation(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.clear_vacation(text) TO mailadmin, maildomainadmin;

-- my_vacations() -> SETOF vacations
-- Caller: members of maildomainadmin (runner: `mailbook vacation show`; and mailadmin:
-- every reply). The vacations table, narrowed to the mailboxes of the domains the login
-- manages: a customer's admin may not read the table itself. Runs as mailowner.
CREATE FUNCTION public.my_vacations() RETURNS SETOF public.vacations
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.* FROM public.vacations v
     WHERE split_part(v.email, '@', 2) IN (SELECT public.managed_domains()) ORDER BY v.email
$$;
REVOKE ALL ON FUNCTION public.my_vacations() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_vacations() TO mailadmin, maildomainadmin;

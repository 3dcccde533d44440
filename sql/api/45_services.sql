-- Per-service access (columns disabled_services of users and transports, 0019): turn
-- one login service off or on again for a mailbox or for a whole domain.

-- services_with(services, service, allowed) -> text[]: the list with the service turned
-- off (added) or on (removed), sorted and without repeats.
CREATE FUNCTION public.services_with(services text[], service text, allowed boolean) RETURNS text[]
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT coalesce(array_agg(DISTINCT s ORDER BY s), '{}')
  FROM unnest(services || service) AS s
 WHERE NOT (allowed AND s = service)
$$;
REVOKE ALL ON FUNCTION public.services_with(text[], text, boolean) FROM PUBLIC;

-- dovecot_service_allowed(service, disabled) -> boolean
-- Caller: Dovecot's password_query (dovecot/dovecot-sql.conf.ext), as mailauth, with
-- %{service} and the mailbox's and domain's disabled_services together. Runs as mailowner
-- and reads no table. An allow-list: true only for a service mailbook knows and the
-- lists do not turn off: imap, pop3, smtp (Postfix's SASL asks Dovecot as "smtp"),
-- submission (Dovecot's own) and sieve (ManageSieve). doveadm (`doveadm auth test` and
-- `doveadm auth login`, run by root on the mail server) is answered as "may this mailbox
-- log in at all": true while any of the five is on. Every other name is refused: lmtp
-- (LMTP asks only the userdb, which answers for any service: a mailbox with every
-- service off still receives mail), imap-urlauth, a name from a later Dovecot. Never
-- raises; NULL is false. mailadmin may call it too (what would Dovecot answer?).
CREATE FUNCTION public.dovecot_service_allowed(service text, disabled text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
-- the names of the CHECKs on users and transports.disabled_services and service_list_error()
SELECT coalesce(CASE service
    WHEN 'doveadm' THEN NOT (ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve'] <@ disabled)
    ELSE service = ANY (ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']) AND NOT service = ANY (disabled)
END, false)
$$;
REVOKE ALL ON FUNCTION public.dovecot_service_allowed(text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.dovecot_service_allowed(text, text[]) TO mailauth, mailadmin;

-- set_mailbox_service(email, service, allowed) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox allow|deny`). Runs as mailowner.
-- service is imap, pop3, smtp (Postfix submission through Dovecot SASL), submission
-- (Dovecot's own) or sieve. Turning off a service the domain has off changes nothing
-- at login: the domain's list is added to the mailbox's.
-- Raises P0002 for an unknown mailbox, 22023 for an unknown service, 22004 for NULLs,
-- 42501 for a customer's admin outside its domains (before the lookup: no oracle).
CREATE FUNCTION public.set_mailbox_service(email text, service text, allowed boolean)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(set_mailbox_service.email);
    svc     text := lower(set_mailbox_service.service);
    result  public.mailboxes;
BEGIN
    PERFORM public.assert_valid(public.service_list_error(ARRAY[svc]));
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'allowed must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    UPDATE public.users u
       SET disabled_services = public.services_with(u.disabled_services, svc, allowed), modified = now()
     WHERE u.email = address;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = address;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_mailbox_service(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_mailbox_service(text, text, boolean) TO mailadmin, maildomainadmin;

-- set_domain_service(domain, service, allowed) -> transports
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook domain allow|deny`). The domain-wide switch: off here is off for
-- every mailbox of the domain, whatever the mailbox says. A customer's admin may switch
-- its own domains (and their alias domains): it could turn the service off for each of
-- their mailboxes anyway. Raises P0002 if the domain is not hosted, 22023 for an
-- unknown service, 22004 for NULLs, 42501 for a customer's admin outside its domains.
CREATE FUNCTION public.set_domain_service(domain text, service text, allowed boolean)
RETURNS public.transports
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    name   text := lower(set_domain_service.domain);
    svc    text := lower(set_domain_service.service);
    result public.transports;
BEGIN
    PERFORM public.assert_valid(public.service_list_error(ARRAY[svc]));
    IF allowed IS NULL THEN
        RAISE EXCEPTION 'allowed must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM public.require_domain_scope(name);
    UPDATE public.transports t
       SET disabled_services = public.services_with(t.disabled_services, svc, allowed), modified = now()
     WHERE t.domain = name
    RETURNING * INTO result;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % is not hosted here', public.quoted(name) USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_domain_service(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_domain_service(text, text, boolean) TO mailadmin, maildomainadmin;

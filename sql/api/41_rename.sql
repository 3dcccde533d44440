-- Renaming a mailbox (issue 33, item 5; migration 0216). The users row keeps everything
-- but its address: password hash and its date, realname, quotas, services, login
-- networks, active, created. Its vacation, app passwords, last logins, Dovecot's usage
-- counts and its own send-as grants follow by their foreign keys (ON UPDATE CASCADE);
-- what names the address as text follows here: the alias rows that forward to it (in any
-- domain), its own alias rows (a forward, "keep a copy" included, 52_forwards.sql), the
-- send-as grants others hold to send as it, its count of wrong password guesses.
--
-- The maildir is kept (users.maildir unchanged): nothing moves on disk, so Postfix and
-- Dovecot, running, never see a path vanish. Dovecot takes the home from the row, whatever
-- the address; mail (and IMAP sessions, Sieve scripts, the quota) stays where it was. A
-- maildir named after the old address is cosmetic. Moving it would need delivery to the
-- mailbox deferred (Postfix's transport for it held) and its IMAP/POP3 sessions kicked
-- (`doveadm kick`) around the move, and back if either failed: not built.
--
-- The window: Postfix resolved the recipient of a message it accepted before the rename;
-- delivered after it (queued, deferred, in flight), it reaches Dovecot's LMTP as the old
-- address. former_addresses (0216) keeps the old address for 5 days, Dovecot's user_query
-- resolves it to the mailbox, and no other mailbox or alias may take it meanwhile. With
-- keep_old_as_alias the old address also stays an alias to the new one: Postfix accepts
-- new mail for it (and the alias outlives the window).
--
-- The triggers record both addresses (and the aliases and send-as grants that reach
-- them) for `mailbook maps follow` and `mailbook dovecot follow`, and audit_log the users
-- row as "old => new" with the changed column email.

-- rename_mailbox(old, new, keep_old_as_alias) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql), which
-- must cover both domains (runner: `mailbook mailbox rename OLD NEW [--keep-alias]`).
-- Runs as mailowner. new may be in another hosted domain; the domain's and reseller's
-- limits count the mailbox (and its alias rows) there (their triggers, 0105, 0208).
-- Raises 22004 for NULLs, 22023 for an invalid new address or new = old, 42501 for a
-- domain outside a scoped admin's reach (before any lookup), P0002 for an unknown
-- mailbox, 23503 if new's domain is not hosted (or is an alias or relay domain: their
-- triggers), 23505 if new is a mailbox, an alias (but one to this mailbox, which it
-- takes back: renaming back after keep_old_as_alias), a mailbox removed with a grace period
-- (0214) or another mailbox's former address in its window, 23514 for a relay domain
-- and the limits'.
CREATE FUNCTION public.rename_mailbox(old text, new text, keep_old_as_alias boolean DEFAULT false)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    o constant text := lower(rename_mailbox.old);
    n constant text := lower(rename_mailbox.new);
    taken  record;
    result public.mailboxes;
BEGIN
    IF o IS NULL OR n IS NULL OR keep_old_as_alias IS NULL THEN
        RAISE EXCEPTION 'old, new and keep_old_as_alias must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM public.assert_valid(public.address_error(n));
    PERFORM public.require_domain_scope(split_part(o, '@', 2));
    PERFORM public.require_domain_scope(split_part(n, '@', 2));
    PERFORM FROM public.users u WHERE u.email = o FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(o) USING ERRCODE = 'P0002';
    END IF;
    IF n = o THEN
        RAISE EXCEPTION 'mailbox % already has that address', public.quoted(o) USING ERRCODE = '22023';
    END IF;
    PERFORM public.assert_hosted(split_part(n, '@', 2));
    -- users' trigger refuses a relay domain on INSERT only (0105); an alias domain is refused
    -- by refuse_unhosted_domains() on the UPDATE below (23503)
    SELECT t.domain, t.transport INTO taken FROM public.transports t
     WHERE t.domain = split_part(n, '@', 2) AND public.is_relay_transport(t.transport);
    IF FOUND THEN
        RAISE EXCEPTION 'domain % is relayed to %, so it holds no mailboxes (%)',
              public.quoted(taken.domain), public.quoted(taken.transport), public.quoted(n)
              USING ERRCODE = '23514',
                    HINT = 'a relay or backup-MX domain passes its mail on; keep mailboxes in a virtual: domain';
    END IF;
    IF EXISTS (SELECT FROM public.users u WHERE u.email = n) THEN
        RAISE EXCEPTION 'mailbox % already exists', public.quoted(n) USING ERRCODE = '23505';
    END IF;
    -- an address kept as an alias of this very mailbox (an earlier rename) it may take back
    SELECT a.alias, a.email INTO taken FROM public.aliases a WHERE a.alias = n AND a.email <> o ORDER BY a.email LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '% is already an alias (to %)', public.quoted(n), public.quoted(taken.email)
              USING ERRCODE = '23505', HINT = 'remove the alias first (mailbook alias remove), or choose another address';
    END IF;
    IF public.removed_address_error(n) IS NOT NULL THEN
        RAISE EXCEPTION '%', public.removed_address_error(n) USING ERRCODE = '23505',
              HINT = format('mailbook mailbox restore %s', n);
    END IF;
    -- windows that have ended; and the mailbox taking back an address it had
    DELETE FROM public.former_addresses f WHERE f.until <= now() OR (f.address = n AND f.email = o);
    SELECT f.address, f.email, f.until INTO taken FROM public.former_addresses f WHERE f.address = n;
    IF FOUND THEN
        RAISE EXCEPTION '% was the address of mailbox %, renamed: mail queued for it is delivered there until %',
              public.quoted(n), public.quoted(taken.email),
              to_char(taken.until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
              USING ERRCODE = '23505', HINT = 'choose another address';
    END IF;

    DELETE FROM public.aliases a WHERE a.alias = n AND a.email = o;
    UPDATE public.users u SET email = n, modified = now() WHERE u.email = o;
    -- its own alias rows (a forward; "keep a copy" is o -> o, then n -> o, then n -> n below)
    UPDATE public.aliases a SET alias = n WHERE a.alias = o;
    -- the rows that forward to it, in any domain (as remove_mailbox() removes them)
    DELETE FROM public.aliases a
     WHERE a.email = o AND EXISTS (SELECT FROM public.aliases b WHERE b.alias = a.alias AND b.email = n);
    UPDATE public.aliases a SET email = n WHERE a.email = o;
    -- grants others hold to send as it (its own, by login, followed the foreign key; one
    -- to send as its own old address would now be to send as itself)
    DELETE FROM public.send_as s
     WHERE s.address = o AND (s.login = n OR EXISTS (SELECT FROM public.send_as t WHERE t.login = s.login AND t.address = n));
    UPDATE public.send_as s SET address = n WHERE s.address = o;
    UPDATE public.password_attempts p SET email = n WHERE p.email = o;
    INSERT INTO public.former_addresses (address, email, until)
    VALUES (o, n, now() + interval '5 days');
    IF keep_old_as_alias THEN
        INSERT INTO public.aliases (alias, email) VALUES (o, n);
    END IF;
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = n;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.rename_mailbox(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.rename_mailbox(text, text, boolean) TO mailadmin, maildomainadmin;

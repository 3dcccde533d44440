-- The lookups behind postfix-maps/virtual.cf and sender-login.cf: more than one rule
-- each (aliases, alias domains, catch-all), so they are functions, called in one round
-- trip per key: `query = SELECT postfix_virtual('%u', '%d')`. Postfix sends each query
-- as plain text and PostgreSQL plans it every time; a one-line call plans in
-- microseconds, while the statements inside keep their plans for the session.
-- Every call asks for a different key, so each statement inside is planned once per
-- session for any key (plan_cache_mode = force_generic_plan): PostgreSQL's default
-- re-plans for the first five keys and then keeps weighing both kinds of plan, which
-- measured 42 pages read per sender-login lookup against 12.
-- Like the rest of the API they run as mailowner (re-created on every migrate apply);
-- they answer exactly what the map needs, so mailreader learns nothing more from them
-- than from its own column grants.

-- postfix_virtual(local_part, domain) -> SETOF text
-- Caller: Postfix's virtual_alias_maps (virtual.cf), as mailreader. The recipient's
-- new destinations, or no row to leave it as it is:
-- 1. in an active alias domain of an active domain, local_part@target, but only if the
--    target would accept it (an active mailbox, an active alias, or its catch-all), so
--    unknown users of an alias domain are refused at RCPT like the target's;
-- 2. the destinations of an active alias;
-- 3. the domain's catch-all ("@domain" aliases), only for a local part that is neither a
--    mailbox nor an alias, active or not: a catch-all never takes a mailbox's mail, nor
--    a disabled one's; nor its tagged mail (foo+tag, recipient_delimiter = +).
CREATE FUNCTION public.postfix_virtual(local_part text, domain text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    address text := local_part || '@' || domain;
    target  text;
    wanted  text;
BEGIN
    SELECT t.alias_of INTO target FROM public.transports t WHERE t.domain = postfix_virtual.domain AND t.active;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF target IS NOT NULL THEN
        wanted := local_part || '@' || target;
        IF EXISTS (SELECT FROM public.transports g WHERE g.domain = target AND g.active)
           AND (EXISTS (SELECT FROM public.users u WHERE u.email = wanted AND u.active)
                OR EXISTS (SELECT FROM public.aliases a WHERE a.alias = wanted AND a.active)
                OR (EXISTS (SELECT FROM public.aliases c WHERE c.alias = '@' || target AND c.active)
                    AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = wanted)
                    AND NOT EXISTS (SELECT FROM public.aliases a WHERE a.alias = wanted))) THEN
            RETURN NEXT wanted;
        END IF;
        RETURN;
    END IF;
    -- A hosted domain, the common case, in one statement: for a mailbox that is two
    -- index probes (its address among the aliases, the domain's "@domain" key) after
    -- the domain's. The checks that protect mailboxes run only if a catch-all exists.
    RETURN QUERY
        SELECT a.email FROM public.aliases a WHERE a.alias = address AND a.active
        UNION ALL
        SELECT c.email FROM public.aliases c
         WHERE c.alias = '@' || postfix_virtual.domain AND c.active
           AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = local_part || c.alias)
           AND NOT EXISTS (SELECT FROM public.aliases x WHERE x.alias = local_part || c.alias)
           -- >>> plus-addressing (issue 18): with recipient_delimiter = + Postfix looks up
           -- foo+tag@d, then foo@d, then @d. The catch-all leaves foo+tag@d alone when foo
           -- is a mailbox or an alias, active or not, so that foo@d's own lookups decide.
           AND NOT (strpos(local_part, '+') > 1
                    AND (EXISTS (SELECT FROM public.users u WHERE u.email = split_part(local_part, '+', 1) || c.alias)
                         OR EXISTS (SELECT FROM public.aliases x WHERE x.alias = split_part(local_part, '+', 1) || c.alias)));
           -- <<< plus-addressing
END
$$;
REVOKE ALL ON FUNCTION public.postfix_virtual(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.postfix_virtual(text, text) TO mailreader, mailadmin;

-- postfix_sender_logins(local_part, domain) -> SETOF text
-- Caller: Postfix's smtpd_sender_login_maps (sender-login.cf), as mailreader. The SASL
-- logins that may use this envelope sender: the mailbox itself, every active local
-- mailbox an alias forwards to, and every active mailbox granted it with
-- allow_send_as(); in an active alias domain, the same local part of the target
-- decides, and grants of the address as written count too. A catch-all grants nothing.
-- Every join starts from the address, a parameter, so each plan is index probes at any
-- size. (One statement with the candidates in a CTE measured faster as plain text on
-- 200,000 mailboxes, but its plan for a small database scanned users: 262 against 168
-- µs at 1,000 mailboxes.)
CREATE FUNCTION public.postfix_sender_logins(local_part text, domain text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    written text := local_part || '@' || domain;
    resolved text;
    target  text;
BEGIN
    SELECT t.alias_of INTO target FROM public.transports t
     WHERE t.domain = postfix_sender_logins.domain AND t.active AND t.alias_of IS NOT NULL;
    resolved := local_part || '@' || coalesce(target, domain);
    RETURN QUERY
        SELECT u.email FROM public.users u JOIN public.transports t ON t.domain = u.domain
         WHERE u.email = resolved AND u.active AND t.active
        UNION ALL
        SELECT a.email FROM public.aliases a JOIN public.users u ON u.email = a.email
          JOIN public.transports t ON t.domain = a.domain
         WHERE a.alias = resolved AND a.active AND u.active AND t.active
        UNION ALL
        SELECT s.login FROM public.send_as s JOIN public.users u ON u.email = s.login
          JOIN public.transports t ON t.domain = u.domain
         WHERE s.address IN (resolved, written) AND u.active AND t.active;
END
$$;
REVOKE ALL ON FUNCTION public.postfix_sender_logins(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.postfix_sender_logins(text, text) TO mailreader, mailadmin;

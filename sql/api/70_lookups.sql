-- The lookups behind every postfix-maps/*.cf file. Postfix sends each query as plain
-- text, and PostgreSQL parses and plans plain text on every lookup: a join such as
-- "is this an active mailbox in an active domain" cost 126-140 µs of server CPU a
-- lookup, planning included, against 67 µs for a trivial query. So each map is one
-- call, `query = SELECT postfix_virtual('%u', '%d')`: the call itself plans in
-- microseconds, while the statements inside are plpgsql's, planned once per session
-- (Postfix's proxymap keeps its connection) and reused for every key.
-- Every call asks for a different key, so each statement inside is planned for any key
-- (plan_cache_mode = force_generic_plan): PostgreSQL's default re-plans for the first
-- five keys and then keeps weighing both kinds of plan, which measured 42 pages read per
-- sender-login lookup against 12.
-- Like the rest of the API they run as mailowner (re-created on every migrate apply);
-- they answer exactly what the map needs, so mailreader learns nothing more from them
-- than from its own column grants.

-- postfix_mailbox_domain(domain) -> SETOF text
-- Caller: virtual_mailbox_domains (domains.cf), as mailreader, once per recipient in
-- smtpd and again in qmgr. The domain itself if mail for it is delivered into mailboxes
-- here: an active domain whose transport is not a relay one, or an active alias domain
-- of an active domain (virtual.cf rewrites its addresses). Relay domains are not.
CREATE FUNCTION public.postfix_mailbox_domain(domain text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- the target's flag as a subquery, not a join: the generic plan of a join of the
    -- small transports table with itself hashes all of it on every call
    RETURN QUERY
        SELECT t.domain FROM public.transports t
         WHERE t.domain = postfix_mailbox_domain.domain AND t.active
           AND NOT public.is_relay_transport(t.transport)
           AND (t.alias_of IS NULL OR (SELECT g.active FROM public.transports g WHERE g.domain = t.alias_of));
END
$$;
REVOKE ALL ON FUNCTION public.postfix_mailbox_domain(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.postfix_mailbox_domain(text) TO mailreader, mailadmin;

-- postfix_mailbox(local_part, domain) -> SETOF text
-- Caller: virtual_mailbox_maps (mailboxes.cf), as mailreader: smtpd refuses unknown
-- recipients with it, virtual(8) delivers with it. The maildir, relative to
-- virtual_mailbox_base, of an active mailbox in an active domain.
CREATE FUNCTION public.postfix_mailbox(local_part text, domain text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- the domain's flag as a subquery on the key's domain (a mailbox's domain is the
    -- domain of its address): a join's generic plan hashes all of transports per call
    RETURN QUERY
        SELECT u.maildir::text FROM public.users u
         WHERE u.email = local_part || '@' || postfix_mailbox.domain AND u.active
           AND (SELECT t.active FROM public.transports t WHERE t.domain = postfix_mailbox.domain);
END
$$;
REVOKE ALL ON FUNCTION public.postfix_mailbox(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.postfix_mailbox(text, text) TO mailreader, mailadmin;

-- postfix_transport(domain) -> SETOF text
-- Caller: transport_maps (transport.cf), as mailreader, in every address resolution
-- (smtpd and qmgr, once each per recipient). transport(5) asks for the whole address
-- first, then the domain, then each parent domain (".example.com", ".com"); the map
-- answers the first of these with its domain's transport ('%d' in the query), and
-- Postfix sends no query for the others, which have no "@". So one query per
-- resolution where there were two for a hosted domain and four for any other
-- (a forward to elsewhere.example.net). The transport of an active domain, but for the
-- default "virtual:", a mailbox here, which is left to virtual_transport (LMTP or
-- virtual(8)): a transport_maps answer would override it.
CREATE FUNCTION public.postfix_transport(domain text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
        SELECT t.transport FROM public.transports t
         WHERE t.domain = postfix_transport.domain AND t.active AND t.transport <> 'virtual:';
END
$$;
REVOKE ALL ON FUNCTION public.postfix_transport(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.postfix_transport(text) TO mailreader, mailadmin;

-- postfix_relay_domain(domain) -> SETOF text
-- Caller: relay_domains (relay-domains.cf), as mailreader, for a recipient domain that
-- is not a mailbox domain (is it a backup-MX domain, or a relay attempt?). The domain
-- itself if it is active and its transport relays. A domain is a mailbox domain or a
-- relay domain, never both (one row, one transport), which is why main.cf.snippet
-- spares Postfix its check for both on every recipient.
CREATE FUNCTION public.postfix_relay_domain(domain text) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
        SELECT t.domain FROM public.transports t
         WHERE t.domain = postfix_relay_domain.domain AND t.active AND public.is_relay_transport(t.transport);
END
$$;
REVOKE ALL ON FUNCTION public.postfix_relay_domain(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.postfix_relay_domain(text) TO mailreader, mailadmin;

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

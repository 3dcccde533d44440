-- Compiled maps: every key of every Postfix map, computed set-wise, for `mailbook maps
-- compile` to write into lmdb: tables (Postfix then answers from a local file, at hash:
-- speed, and keeps answering while PostgreSQL is down). Each map is one statement over
-- the tables, never a call of the lookup function per key; `mailbook maps verify` and
-- tests/test_compiled_maps.py prove that the keys answer what 70_lookups.sql answers.
--
-- How each rule of the pgsql: maps becomes keys. Postfix looks up an address as
-- user@domain, then @domain (virtual(5), the sender login maps); a transport as
-- user@domain, then domain (transport(5)); domains as the domain.
-- * domains, relay-domains: one key per active domain, its own name as the value.
-- * mailboxes: one key per active mailbox of an active domain -> its maildir.
-- * transport: one key per active domain -> its transport, but for the default
--   "virtual:" (a mailbox domain), left to virtual_transport as postfix_transport()
--   leaves it. transport.cf answers the whole address with its domain's transport
--   ('%d'); here the address finds nothing and Postfix's next lookup, the domain,
--   answers the same.
-- * virtual, in a hosted domain: each address with active alias rows -> their
--   destinations. A catch-all becomes the "@domain" key, which Postfix tries after the
--   address; so that it never swallows mail the SQL map does not give it, every mailbox
--   and every alias address of that domain (active or not) without an active alias row
--   gets a self-key, address -> address, which Postfix treats as "found, keep it".
-- * virtual, in an active alias domain of an active target: one key per local part the
--   target accepts (an active mailbox or an active alias): local@alias -> local@target.
--   If the target has a catch-all, "@alias" -> "@target" (virtual(5): the same user in
--   the other domain) and self-keys for the target's mailboxes and aliases that do not
--   accept (disabled mailboxes, inactive aliases).
-- * refused-recipients: a self-key makes smtpd accept the address at RCPT (any match in
--   virtual_alias_maps does, smtpd_check.c), where the SQL maps answer nothing and smtpd
--   refuses it as unknown. So every self-key that is not an active mailbox is listed here
--   for check_recipient_access, with the reply the SQL maps give: 550 5.1.1.
-- * sender-login: for every address that is a mailbox, an alias or a send-as grant: the
--   active mailbox itself, the active mailboxes its active alias rows reach, the active
--   grantees; in an active alias domain, local@alias gets what local@target gets plus
--   the grants of local@alias as written. Catch-alls grant nothing ("@domain" is never a key).
-- Inactive domains, mailboxes and alias rows give no keys (beyond the self-keys above).

-- compiled_map_rows(map) -> (key, value)
-- Caller: `mailbook maps compile` and `mailbook maps verify`, as mailreader, in one
-- REPEATABLE READ READ ONLY transaction for all maps. map is one of domains, mailboxes,
-- virtual, transport, relay-domains, sender-login, refused-recipients; a value with
-- several answers joins them with "," in order, as pgsql_table(5) does. Raises 22023
-- for an unknown map name.
CREATE FUNCTION public.compiled_map_rows(map text) RETURNS TABLE (key text, value text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CASE map
    WHEN 'domains' THEN
        RETURN QUERY
            SELECT t.domain, t.domain FROM public.transports t
              LEFT JOIN public.transports g ON g.domain = t.alias_of
             WHERE t.active AND NOT public.is_relay_transport(t.transport)
               AND (t.alias_of IS NULL OR g.active);
    WHEN 'mailboxes' THEN
        RETURN QUERY
            SELECT u.email::text, u.maildir::text FROM public.users u
              JOIN public.transports t ON t.domain = u.domain
             WHERE u.active AND t.active;
    WHEN 'transport' THEN
        RETURN QUERY
            SELECT t.domain, t.transport FROM public.transports t
             WHERE t.active AND t.transport <> 'virtual:';
    WHEN 'relay-domains' THEN
        RETURN QUERY
            SELECT t.domain, t.domain FROM public.transports t
             WHERE t.active AND public.is_relay_transport(t.transport);
    WHEN 'virtual' THEN
        RETURN QUERY SELECT r.key, r.value FROM public.compiled_virtual_rows() r;
    WHEN 'refused-recipients' THEN
        RETURN QUERY
            SELECT r.key, '550 5.1.1 User unknown in virtual mailbox table'
              FROM public.compiled_virtual_rows() r
             WHERE r.key = r.value
               AND NOT EXISTS (SELECT FROM public.users u JOIN public.transports t ON t.domain = u.domain
                                WHERE u.email = r.key AND u.active AND t.active);
    WHEN 'sender-login' THEN
        RETURN QUERY
        WITH alias_domains AS (
            SELECT t.domain, t.alias_of AS target FROM public.transports t
             WHERE t.active AND t.alias_of IS NOT NULL
        ), grants AS (
            SELECT s.address::text AS address, s.login::text AS login FROM public.send_as s
              JOIN public.users u ON u.email = s.login
              JOIN public.transports t ON t.domain = u.domain
             WHERE u.active AND t.active
        ), owners AS (  -- who owns each address as it resolves (the target's, in an alias domain)
            SELECT u.email::text AS address, u.email::text AS login FROM public.users u
              JOIN public.transports t ON t.domain = u.domain
             WHERE u.active AND t.active
            UNION ALL
            SELECT a.alias::text, a.email::text FROM public.aliases a
              JOIN public.users u ON u.email = a.email
              JOIN public.transports t ON t.domain = a.domain
             WHERE a.active AND u.active AND t.active
            UNION ALL
            SELECT g.address, g.login FROM grants g
        ), keyed AS (
            SELECT o.address AS key, o.login FROM owners o
             WHERE split_part(o.address, '@', 2) NOT IN (SELECT d.domain FROM alias_domains d)
            UNION ALL
            SELECT split_part(o.address, '@', 1) || '@' || d.domain, o.login FROM owners o
              JOIN alias_domains d ON d.target = split_part(o.address, '@', 2)
            UNION ALL
            SELECT g.address, g.login FROM grants g
              JOIN alias_domains d ON d.domain = split_part(g.address, '@', 2)
        )
        SELECT k.key, string_agg(DISTINCT k.login, ',' ORDER BY k.login) FROM keyed k
         WHERE k.key NOT LIKE '@%'
         GROUP BY k.key;
    ELSE
        RAISE EXCEPTION 'unknown compiled map %', map USING ERRCODE = 'invalid_parameter_value',
              HINT = 'one of domains, mailboxes, virtual, transport, relay-domains, sender-login, refused-recipients';
    END CASE;
END
$$;
REVOKE ALL ON FUNCTION public.compiled_map_rows(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compiled_map_rows(text) TO mailreader, mailadmin;

-- compiled_virtual_rows() -> (key, value)
-- Caller: compiled_map_rows('virtual') and ('refused-recipients'); not granted to anyone.
-- The keys of virtual_alias_maps, as the header of this file explains.
CREATE FUNCTION public.compiled_virtual_rows() RETURNS TABLE (key text, value text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH hosted AS (
        SELECT t.domain FROM public.transports t WHERE t.active AND t.alias_of IS NULL
    ), aliased AS (  -- an active alias domain of an active target
        SELECT t.domain, t.alias_of AS target FROM public.transports t
          JOIN public.transports g ON g.domain = t.alias_of AND g.active
         WHERE t.active
    ), named AS (  -- every mailbox or alias address, and whether it accepts mail
        SELECT n.address, bool_or(n.accepts) AS accepts FROM (
            SELECT u.email::text AS address, u.active AS accepts FROM public.users u
            UNION ALL
            SELECT a.alias::text, a.active FROM public.aliases a WHERE a.alias NOT LIKE '@%'
        ) n GROUP BY n.address
    ), forwards AS (
        SELECT a.alias::text AS address, string_agg(a.email::text, ',' ORDER BY a.email) AS destinations
          FROM public.aliases a WHERE a.active AND a.alias NOT LIKE '@%' GROUP BY a.alias
    ), catch_alls AS (
        SELECT a.domain, string_agg(a.email::text, ',' ORDER BY a.email) AS destinations
          FROM public.aliases a WHERE a.active AND a.alias LIKE '@%' GROUP BY a.domain
    )
    SELECT f.address, f.destinations FROM forwards f
      JOIN hosted h ON h.domain = split_part(f.address, '@', 2)
    UNION ALL
    SELECT '@' || c.domain, c.destinations FROM catch_alls c JOIN hosted h ON h.domain = c.domain
    UNION ALL
    SELECT n.address, n.address FROM named n
      JOIN catch_alls c ON c.domain = split_part(n.address, '@', 2)
      JOIN hosted h ON h.domain = c.domain
     WHERE NOT EXISTS (SELECT FROM forwards f WHERE f.address = n.address)
    UNION ALL
    SELECT split_part(n.address, '@', 1) || '@' || d.domain, n.address FROM aliased d
      JOIN named n ON split_part(n.address, '@', 2) = d.target
     WHERE n.accepts
    UNION ALL
    SELECT '@' || d.domain, '@' || d.target FROM aliased d JOIN catch_alls c ON c.domain = d.target
    UNION ALL
    SELECT split_part(n.address, '@', 1) || '@' || d.domain, split_part(n.address, '@', 1) || '@' || d.domain
      FROM aliased d
      JOIN catch_alls c ON c.domain = d.target
      JOIN named n ON split_part(n.address, '@', 2) = d.target
     WHERE NOT n.accepts
$$;
REVOKE ALL ON FUNCTION public.compiled_virtual_rows() FROM PUBLIC;

-- Relay and backup-MX domains: a domain whose transport is smtp: or relay: is accepted
-- here and passed on to its next hop (postfix-maps/relay-domains.cf feeds
-- relay_domains), never delivered into a mailbox: domains.cf already leaves it out of
-- virtual_mailbox_domains. A mailbox in such a domain would never get its mail, so the
-- tables refuse one: adding it, or turning its domain into a relay domain.
-- depends: 0021_create_maildir_purge_queue

-- is_relay_transport(transport): smtp: and relay: pass mail on; the others deliver here.
CREATE FUNCTION public.is_relay_transport(transport text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT transport LIKE 'smtp:%' OR transport LIKE 'relay:%'
$f$;
REVOKE ALL ON FUNCTION public.is_relay_transport(text) FROM PUBLIC;
-- mailreader: postfix-maps/relay-domains.cf calls it
GRANT EXECUTE ON FUNCTION public.is_relay_transport(text) TO mailadmin, mailreader;

-- refuse_mailboxes_in_relay_domains(): AFTER INSERT/UPDATE ... FOR EACH STATEMENT on
-- users (new mailboxes) and on transports (changed transports), over new_rows.
CREATE FUNCTION public.refuse_mailboxes_in_relay_domains() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        -- most servers relay nothing: then a bulk import pays one probe, not a join
        IF NOT EXISTS (SELECT FROM public.transports t WHERE public.is_relay_transport(t.transport)) THEN
            RETURN NULL;
        END IF;
        SELECT n.email, t.domain, t.transport INTO bad
          FROM new_rows n JOIN public.transports t ON t.domain = n.domain
         WHERE public.is_relay_transport(t.transport)
         LIMIT 1;
    ELSE
        SELECT u.email, n.domain, n.transport INTO bad
          FROM new_rows n JOIN public.users u ON u.domain = n.domain
         WHERE public.is_relay_transport(n.transport)
         LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'domain % is relayed to %, so it holds no mailboxes (%)',
              public.quoted(bad.domain), public.quoted(bad.transport), public.quoted(bad.email)
              USING ERRCODE = '23514',
                    HINT = 'a relay or backup-MX domain passes its mail on; keep mailboxes in a virtual: domain';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER relay_domains_hold_no_mailboxes AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_mailboxes_in_relay_domains();
CREATE TRIGGER relay_domains_hold_no_mailboxes AFTER UPDATE ON public.transports
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_mailboxes_in_relay_domains();

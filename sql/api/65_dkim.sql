-- DKIM keys (migrations 0209, 0217; table dkim_keys): mailbook generates a key pair
-- (mailbook/dkim.py), stages it by COPY and add_dkim_key() stores it; OpenDKIM signs
-- with the key the view dkim_signing names for the sender's domain, read as maildkim.
-- Ed25519 keys are stored but not activated yet: Debian's OpenDKIM (2.11.0~beta2, on 12
-- and 13) takes the algorithm from its one global SignatureAlgorithm, not per key, so one
-- instance signs either every domain with RSA or every domain with Ed25519 (with an RSA
-- key under SignatureAlgorithm ed25519-sha256, or the reverse, it fails the message with
-- "resource unavailable"). Ed25519 alone would not verify at many receivers; a per-key
-- algorithm (KeyTable's 4th field) is upstream since 2026 and will allow RSA + Ed25519.
-- A key's life: pending (added; its DNS record can be published) -> active (signing) ->
-- retiring (a rotation's old key: signs no more, its record stays published until
-- retire_after) -> retired (its record may go). By hand, `dkim activate` retires the
-- domain's previous active key at once, in the same transaction (never a moment
-- without a signing key). A rotation (`dkim rotate`, then `dkim advance` from cron)
-- activates the next key only once DNS answers its p= value (advance_dkim_key()), and
-- retires the old one after a delay (retire_dkim_keys_due()), 7 days by default: a
-- message signed just before the switch may wait in a receiver's queue for up to 5 days
-- (Postfix's maximal_queue_lifetime) before it is verified, and then some are verified
-- again (forwarders, ARC, a mail client): its record must still answer.
-- Alias domains and catch-alls: mail From: x@alias.example is signed with the alias
-- domain's own active key if it has one (d=alias.example, aligned for DMARC); without
-- one, with its target's (d=target: the signature verifies but does not align with
-- From:, like the default signature of hosted mail services; DMARC for the alias domain
-- then rests on SPF until it gets a key of its own: `mailbook dkim rotate alias.example`).
-- Never unsigned while the target signs: a receiver sees the same server's mail signed
-- either way. A catch-all (@example.com) needs nothing: OpenDKIM looks up the From:
-- address's domain, so any address of a hosted domain signs with the domain's key
-- (for mail from authenticated clients and InternalHosts only; mail forwarded from
-- outside is not re-signed). Rotation is mailadmin's: adding a key means staging a
-- private key (dkim_key_staging), which a customer's admin (maildomainadmin) may not.
-- Nothing here returns a private key: only mailowner and maildkim read them.

-- add_dkim_key(domain, selector, algorithm) -> text (the public key, the DNS record's p= value)
-- Caller: members of mailadmin (runner: `mailbook dkim add`), after COPYing the key pair
-- into dkim_key_staging in the same transaction. Runs as mailowner. Moves that one staged
-- pair into dkim_keys as a pending key and empties the staging rows of the transaction.
-- Raises 23503 if the domain is not hosted, 22023 for a selector that is not one DNS
-- label (lower case), an unknown algorithm, a public key that does not fit it, or not
-- exactly one staged pair; 23505 if the domain has that selector already.
CREATE FUNCTION public.add_dkim_key(domain text, selector text, algorithm text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(add_dkim_key.domain);
    staged record;
    n integer;
BEGIN
    IF d IS NULL OR add_dkim_key.selector IS NULL OR add_dkim_key.algorithm IS NULL THEN
        RAISE EXCEPTION 'domain, selector and algorithm must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM public.assert_hosted(d);
    IF add_dkim_key.selector !~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' THEN
        RAISE EXCEPTION 'selector % is not one DNS label (a-z, 0-9, -; at most 63)', public.quoted(add_dkim_key.selector)
              USING ERRCODE = '22023';
    END IF;
    IF add_dkim_key.algorithm NOT IN ('rsa-sha256', 'ed25519-sha256') THEN
        RAISE EXCEPTION 'DKIM algorithm % is not rsa-sha256 or ed25519-sha256', public.quoted(add_dkim_key.algorithm)
              USING ERRCODE = '22023';
    END IF;
    SELECT count(*) INTO n FROM public.dkim_key_staging s WHERE s.batch = pg_current_xact_id();
    IF n <> 1 THEN
        RAISE EXCEPTION '% DKIM key pairs staged in this transaction, not one', n USING ERRCODE = '22023',
              HINT = 'add keys with `mailbook dkim add`: it stages the pair by COPY first';
    END IF;
    DELETE FROM public.dkim_key_staging s WHERE s.batch = pg_current_xact_id()
        RETURNING s.private_key, s.public_key INTO staged;
    -- an Ed25519 public key is 32 bytes (44 base64 characters, RFC 8463); RSA 2048's
    -- SubjectPublicKeyInfo is 294 bytes: anything shorter than 1024 bits is refused
    IF (add_dkim_key.algorithm = 'ed25519-sha256' AND length(staged.public_key) <> 44)
       OR (add_dkim_key.algorithm = 'rsa-sha256' AND length(staged.public_key) < 216) THEN
        RAISE EXCEPTION 'the staged public key (% characters) is no % key', length(staged.public_key),
              add_dkim_key.algorithm USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT FROM public.dkim_keys k WHERE k.domain = d AND k.selector = add_dkim_key.selector) THEN
        RAISE EXCEPTION 'domain % has a DKIM key with selector % already', public.quoted(d),
              public.quoted(add_dkim_key.selector) USING ERRCODE = '23505';
    END IF;
    INSERT INTO public.dkim_keys (domain, selector, algorithm, private_key, public_key)
    VALUES (d, add_dkim_key.selector, add_dkim_key.algorithm, staged.private_key, staged.public_key);
    RETURN staged.public_key;
END
$$;
REVOKE ALL ON FUNCTION public.add_dkim_key(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_dkim_key(text, text, text) TO mailadmin;

-- activate_dkim_key(domain, selector) -> void
-- Caller: members of mailadmin (runner: `mailbook dkim activate`). Runs as mailowner.
-- The pending key starts signing; the domain's active key, if any, retires in the same
-- transaction. Activating the active key again changes nothing. Raises P0002 if the
-- domain has no key with that selector, 55000 if it is retired or retiring (add a new one), 0A000
-- for an Ed25519 key (see the top of this file).
CREATE FUNCTION public.activate_dkim_key(domain text, selector text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(activate_dkim_key.domain);
    current_state text;
    key_algorithm text;
BEGIN
    SELECT k.state, k.algorithm INTO current_state, key_algorithm FROM public.dkim_keys k
     WHERE k.domain = d AND k.selector = activate_dkim_key.selector FOR UPDATE;
    IF current_state IS NULL THEN
        RAISE EXCEPTION 'domain % has no DKIM key with selector %', public.quoted(d),
              public.quoted(activate_dkim_key.selector) USING ERRCODE = 'P0002';
    ELSIF current_state IN ('retired', 'retiring') THEN
        RAISE EXCEPTION 'DKIM key % of domain % is %', public.quoted(activate_dkim_key.selector),
              public.quoted(d), current_state USING ERRCODE = '55000', HINT = 'add a new key: mailbook dkim add';
    ELSIF current_state = 'active' THEN
        RETURN;
    ELSIF key_algorithm <> 'rsa-sha256' THEN
        RAISE EXCEPTION 'DKIM key % of domain % is %: the signer (OpenDKIM 2.11) signs rsa-sha256 keys only',
              public.quoted(activate_dkim_key.selector), public.quoted(d), key_algorithm USING ERRCODE = '0A000',
              HINT = 'activate an RSA key (mailbook dkim add DOMAIN --algorithm rsa); keep this one published for later';
    END IF;
    UPDATE public.dkim_keys k SET state = 'retired', retired = now()
     WHERE k.domain = d AND k.state = 'active';
    UPDATE public.dkim_keys k SET state = 'active', activated = now()
     WHERE k.domain = d AND k.selector = activate_dkim_key.selector;
END
$$;
REVOKE ALL ON FUNCTION public.activate_dkim_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.activate_dkim_key(text, text) TO mailadmin;

-- retire_dkim_key(domain, selector) -> void
-- Caller: members of mailadmin (runner: `mailbook dkim retire`). Runs as mailowner.
-- A pending, active or retiring key stops (or never starts) signing, at once; the row
-- stays, for the DNS record that may still be published. Retiring a retired key changes nothing. Raises
-- P0002 if the domain has no key with that selector.
CREATE FUNCTION public.retire_dkim_key(domain text, selector text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(retire_dkim_key.domain);
BEGIN
    IF NOT EXISTS (SELECT FROM public.dkim_keys k WHERE k.domain = d AND k.selector = retire_dkim_key.selector) THEN
        RAISE EXCEPTION 'domain % has no DKIM key with selector %', public.quoted(d),
              public.quoted(retire_dkim_key.selector) USING ERRCODE = 'P0002';
    END IF;
    UPDATE public.dkim_keys k SET state = 'retired', retired = coalesce(k.retired, now())  -- retiring: stopped already
     WHERE k.domain = d AND k.selector = retire_dkim_key.selector AND k.state <> 'retired';
END
$$;
REVOKE ALL ON FUNCTION public.retire_dkim_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.retire_dkim_key(text, text) TO mailadmin;

-- rotate_dkim_key(domain, selector) -> text (the public key, the DNS record's p= value)
-- Caller: members of mailadmin (runner: `mailbook dkim rotate`, `mailbook domain add
-- --dkim`), after COPYing an RSA key pair into dkim_key_staging in the same transaction.
-- Runs as mailowner. Adds it as add_dkim_key() does, pending, marked as the domain's
-- next key: advance_dkim_key() activates it once its record is published (a domain
-- without a key gets its first one this way). Raises 55000 if the domain has a rotation
-- under way already (its next key still pending: publish it, or retire it), and what
-- add_dkim_key() raises.
CREATE FUNCTION public.rotate_dkim_key(domain text, selector text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(rotate_dkim_key.domain);
    waiting text;
    public_key text;
BEGIN
    SELECT k.selector INTO waiting FROM public.dkim_keys k
     WHERE k.domain = d AND k.state = 'pending' AND k.activate_when_published;
    IF waiting IS NOT NULL THEN
        RAISE EXCEPTION 'domain % has a rotation under way: its next DKIM key % is pending', public.quoted(d),
              public.quoted(waiting) USING ERRCODE = '55000',
              HINT = 'publish its record and run `mailbook dkim advance`, or withdraw it: mailbook dkim retire';
    END IF;
    public_key := public.add_dkim_key(d, rotate_dkim_key.selector, 'rsa-sha256');
    UPDATE public.dkim_keys k SET activate_when_published = true
     WHERE k.domain = d AND k.selector = rotate_dkim_key.selector;
    RETURN public_key;
END
$$;
REVOKE ALL ON FUNCTION public.rotate_dkim_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.rotate_dkim_key(text, text) TO mailadmin;

-- dkim_rotations(only_domain) -> (domain, selector, name, public_key)
-- Caller: members of mailadmin (runner: `mailbook dkim advance`, which resolves each
-- name's TXT record and hands the answer to advance_dkim_key()). Runs as mailowner.
-- The pending next keys of rotations, of every domain or one (NULL: all), by domain;
-- name is the record's, absolute. Never a private key. Raises 23503 for a domain that is
-- not hosted (a typo in a cron line would otherwise say nothing, ever).
CREATE FUNCTION public.dkim_rotations(only_domain text DEFAULT NULL)
RETURNS TABLE (domain text, selector text, name text, public_key text)
LANGUAGE plpgsql STABLE SECURITY DEFINER  -- plpgsql: created even where 0217 is rolled back
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF only_domain IS NOT NULL THEN
        PERFORM public.assert_hosted(lower(only_domain));
    END IF;
    RETURN QUERY
        SELECT k.domain, k.selector, k.selector || '._domainkey.' || k.domain || '.', k.public_key
          FROM public.dkim_keys k
         WHERE k.state = 'pending' AND k.activate_when_published
           AND (only_domain IS NULL OR k.domain = lower(only_domain))
         ORDER BY k.domain;
END
$$;
REVOKE ALL ON FUNCTION public.dkim_rotations(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.dkim_rotations(text) TO mailadmin;

-- advance_dkim_key(domain, selector, published, retire_delay) -> (outcome, previous, retire_after)
-- Caller: members of mailadmin (runner: `mailbook dkim advance`). Runs as mailowner.
-- published: the texts of the TXT records DNS answered for the key's name (each one's
-- strings joined; empty or NULL: none). When one of them carries the key's p= value
-- (whitespace ignored, as DKIM does), the key becomes active and the domain's active
-- key, if any, becomes retiring until now() + retire_delay; outcome 'activated',
-- previous and retire_after name that old key. Otherwise nothing changes: outcome
-- 'missing' (no record) or 'different' (records, none with this p=). Raises P0002 if
-- the domain has no key with that selector, 55000 if it is not a rotation's pending
-- key, 22023 for a negative delay, 22004 for a NULL one.
CREATE FUNCTION public.advance_dkim_key(domain text, selector text, published text[],
                                        retire_delay interval DEFAULT interval '7 days')
RETURNS TABLE (outcome text, previous text, retire_after timestamptz)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(advance_dkim_key.domain);
    pending_key record;
    previous_key record;
BEGIN
    IF advance_dkim_key.retire_delay IS NULL THEN
        RAISE EXCEPTION 'the retirement delay must not be NULL' USING ERRCODE = '22004';
    ELSIF advance_dkim_key.retire_delay < interval '0' THEN
        RAISE EXCEPTION 'the retirement delay % is negative', public.quoted(advance_dkim_key.retire_delay::text)
              USING ERRCODE = '22023';
    END IF;
    SELECT k.state, k.activate_when_published AS rotation, k.public_key INTO pending_key FROM public.dkim_keys k
     WHERE k.domain = d AND k.selector = advance_dkim_key.selector FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'domain % has no DKIM key with selector %', public.quoted(d),
              public.quoted(advance_dkim_key.selector) USING ERRCODE = 'P0002';
    ELSIF pending_key.state <> 'pending' OR NOT pending_key.rotation THEN
        RAISE EXCEPTION 'DKIM key % of domain % is no rotation''s pending key (it is %)',
              public.quoted(advance_dkim_key.selector), public.quoted(d), pending_key.state USING ERRCODE = '55000',
              HINT = 'start a rotation with `mailbook dkim rotate`; a key from `dkim add` is activated by hand';
    END IF;
    IF coalesce(cardinality(advance_dkim_key.published), 0) = 0 THEN
        RETURN QUERY SELECT 'missing'::text, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    -- DKIM's tag=value list (RFC 6376 3.2): whitespace anywhere is folding, tags split on ;
    IF NOT EXISTS (SELECT FROM unnest(advance_dkim_key.published) txt,
                               unnest(string_to_array(regexp_replace(txt, '\s', '', 'g'), ';')) tag
                    WHERE tag = 'p=' || pending_key.public_key) THEN
        RETURN QUERY SELECT 'different'::text, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    UPDATE public.dkim_keys k SET state = 'retiring', retired = now(),
                                  retire_after = now() + advance_dkim_key.retire_delay
     WHERE k.domain = d AND k.state = 'active'
    RETURNING k.selector, k.retire_after INTO previous_key;
    UPDATE public.dkim_keys k SET state = 'active', activated = now()
     WHERE k.domain = d AND k.selector = advance_dkim_key.selector;
    RETURN QUERY SELECT 'activated'::text, previous_key.selector::text, previous_key.retire_after::timestamptz;
END
$$;
REVOKE ALL ON FUNCTION public.advance_dkim_key(text, text, text[], interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.advance_dkim_key(text, text, text[], interval) TO mailadmin;

-- retire_dkim_keys_due(only_domain) -> (domain, selector, retire_after)
-- Caller: members of mailadmin (runner: `mailbook dkim advance`). Runs as mailowner.
-- Retires every retiring key whose retire_after has passed, of every domain or one
-- (NULL: all), and returns them: their DNS records may go now.
CREATE FUNCTION public.retire_dkim_keys_due(only_domain text DEFAULT NULL)
RETURNS TABLE (domain text, selector text, retire_after timestamptz)
LANGUAGE plpgsql SECURITY DEFINER  -- plpgsql: created even where 0217 is rolled back
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        WITH due AS (
            UPDATE public.dkim_keys k SET state = 'retired'
             WHERE k.state = 'retiring' AND k.retire_after <= now()
               AND (only_domain IS NULL OR k.domain = lower(only_domain))
            RETURNING k.domain, k.selector, k.retire_after)
        SELECT due.domain, due.selector, due.retire_after FROM due ORDER BY 1, 2;
END
$$;
REVOKE ALL ON FUNCTION public.retire_dkim_keys_due(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.retire_dkim_keys_due(text) TO mailadmin;

-- dkim_keys_list(only_domain) -> (domain, selector, algorithm, public_key, state, created, activated, retired,
--                                  retire_after)
-- Caller: members of mailadmin (runner: `mailbook dkim list`; later `mailbook dns`).
-- Runs as mailowner. The public parts of every key, or of one domain's (NULL: all),
-- by domain and age; retire_after: when a retiring key retires. Never a private key.
CREATE FUNCTION public.dkim_keys_list(only_domain text DEFAULT NULL)
RETURNS TABLE (domain text, selector text, algorithm text, public_key text, state text,
               created timestamptz, activated timestamptz, retired timestamptz, retire_after timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER  -- plpgsql: created even where 0209 is rolled back
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT k.domain, k.selector, k.algorithm, k.public_key, k.state, k.created, k.activated, k.retired,
               k.retire_after
          FROM public.dkim_keys k
         WHERE only_domain IS NULL OR k.domain = lower(only_domain)
         ORDER BY k.domain, k.created, k.selector;
END
$$;
REVOKE ALL ON FUNCTION public.dkim_keys_list(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.dkim_keys_list(text) TO mailadmin;

-- dkim_dns_records(domain) -> (name, selector, algorithm, state, txt)
-- Caller: members of mailadmin, and maildomainadmin for the domains in its scope (runner:
-- `mailbook dns DOMAIN`, which prints and checks them). Runs as mailowner. The DKIM TXT
-- records the domain must publish: one per pending key (published before it signs), per
-- active key and per retiring key (mail it signed may still be on its way); retired
-- keys not (their records may stay in DNS, nobody needs them).
-- name is absolute (trailing dot), txt the whole record text, unsplit. Raises 42501
-- when a scoped admin may not manage the domain (the same for one not hosted), 23503
-- when the domain is not hosted.
CREATE FUNCTION public.dkim_dns_records(domain text)
RETURNS TABLE (name text, selector text, algorithm text, state text, txt text)
LANGUAGE plpgsql STABLE SECURITY DEFINER  -- plpgsql: created even where 0209 is rolled back
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d constant text := lower(dkim_dns_records.domain);
BEGIN
    PERFORM public.require_domain_scope(d);
    PERFORM public.assert_hosted(d);
    RETURN QUERY
        SELECT k.selector || '._domainkey.' || k.domain || '.', k.selector, k.algorithm, k.state,
               'v=DKIM1; k=' || split_part(k.algorithm, '-', 1) || '; p=' || k.public_key
          FROM public.dkim_keys k
         WHERE k.domain = d AND k.state IN ('pending', 'active', 'retiring')
         ORDER BY k.created, k.selector;
END
$$;
REVOKE ALL ON FUNCTION public.dkim_dns_records(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.dkim_dns_records(text) TO mailadmin, maildomainadmin;

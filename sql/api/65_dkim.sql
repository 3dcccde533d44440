-- DKIM keys (migration 0209, table dkim_keys): mailbook generates a key pair
-- (mailbook/dkim.py), stages it by COPY and add_dkim_key() stores it; OpenDKIM signs
-- with each domain's active key, read as maildkim through the view dkim_signing.
-- Ed25519 keys are stored but not activated yet: Debian's OpenDKIM (2.11.0~beta2, on 12
-- and 13) takes the algorithm from its one global SignatureAlgorithm, not per key, so one
-- instance signs either every domain with RSA or every domain with Ed25519 (with an RSA
-- key under SignatureAlgorithm ed25519-sha256, or the reverse, it fails the message with
-- "resource unavailable"). Ed25519 alone would not verify at many receivers; a per-key
-- algorithm (KeyTable's 4th field) is upstream since 2026 and will allow RSA + Ed25519.
-- A key's life: pending (added; its DNS record can be published) -> active (signing;
-- activating one retires the domain's previous active key in the same transaction, so
-- there is never a moment without a signing key) -> retired. Nothing here returns a
-- private key: only mailowner and maildkim read them.

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
-- domain has no key with that selector, 55000 if it is retired (add a new one), 0A000
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
    ELSIF current_state = 'retired' THEN
        RAISE EXCEPTION 'DKIM key % of domain % is retired', public.quoted(activate_dkim_key.selector),
              public.quoted(d) USING ERRCODE = '55000', HINT = 'add a new key: mailbook dkim add';
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
-- A pending or active key stops (or never starts) signing; the row stays, for the DNS
-- record that may still be published. Retiring a retired key changes nothing. Raises
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
    UPDATE public.dkim_keys k SET state = 'retired', retired = now()
     WHERE k.domain = d AND k.selector = retire_dkim_key.selector AND k.state <> 'retired';
END
$$;
REVOKE ALL ON FUNCTION public.retire_dkim_key(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.retire_dkim_key(text, text) TO mailadmin;

-- dkim_keys_list(only_domain) -> (domain, selector, algorithm, public_key, state, created, activated, retired)
-- Caller: members of mailadmin (runner: `mailbook dkim list`; later `mailbook dns`).
-- Runs as mailowner. The public parts of every key, or of one domain's (NULL: all),
-- by domain and age. Never a private key.
CREATE FUNCTION public.dkim_keys_list(only_domain text DEFAULT NULL)
RETURNS TABLE (domain text, selector text, algorithm text, public_key text, state text,
               created timestamptz, activated timestamptz, retired timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER  -- plpgsql: created even where 0209 is rolled back
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT k.domain, k.selector, k.algorithm, k.public_key, k.state, k.created, k.activated, k.retired
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
-- records the domain must publish: one per pending key (published before it signs) and
-- per active key; retired keys not (their records may stay in DNS, nobody needs them).
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
         WHERE k.domain = d AND k.state IN ('pending', 'active')
         ORDER BY k.created, k.selector;
END
$$;
REVOKE ALL ON FUNCTION public.dkim_dns_records(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.dkim_dns_records(text) TO mailadmin, maildomainadmin;

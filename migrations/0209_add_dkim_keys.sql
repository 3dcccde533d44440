-- DKIM keys per hosted domain (issue 34, first slice): mailbook generates them, PostgreSQL
-- keeps them, OpenDKIM signs with them, reading the one view below through its OpenDBX
-- pgsql backend (KeyTable and SigningTable as dsn:pgsql:// lookups, `mailbook dkim install`).
-- * One row per (domain, selector); the selector carries a date ('mb202612') so a domain
--   can hold its next key beside the current one. state: pending (may be published in
--   DNS, not signing yet), active (signing; at most one per domain), retired (no longer
--   signing; its DNS record may stay until old mail has been read).
-- * private_key is PEM (PKCS#8). Nobody but mailowner reads the table: mailadmin reads
--   the public parts through dkim_keys_list(), and the signer's role maildkim reads
--   dkim_signing, the active keys only, and nothing else at all.
-- * The private key never travels in a statement's text or parameters (the server log can
--   hold both): `mailbook dkim add` COPYs it into dkim_key_staging and add_dkim_key()
--   moves it in the same transaction. COPY's data is never logged.
-- depends: 0208_add_resellers

DO $check$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'maildkim') THEN
        RAISE EXCEPTION 'role maildkim does not exist'
              USING ERRCODE = '42704',
                    HINT = 'run `mailbook init` as a superuser first; it creates the roles (and changes nothing else)';
    END IF;
END
$check$;

GRANT USAGE ON SCHEMA public TO maildkim;

CREATE TABLE public.dkim_keys (
    domain      text NOT NULL
                CONSTRAINT dkim_keys_domain_hosted REFERENCES public.transports (domain) ON DELETE CASCADE,
    selector    text NOT NULL
                CONSTRAINT dkim_keys_selector_label CHECK (selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    algorithm   text NOT NULL
                CONSTRAINT dkim_keys_algorithm_known CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    private_key text NOT NULL
                CONSTRAINT dkim_keys_private_key_pem CHECK (private_key LIKE '-----BEGIN PRIVATE KEY-----%'),
    public_key  text NOT NULL
                CONSTRAINT dkim_keys_public_key_base64 CHECK (public_key ~ '^[A-Za-z0-9+/]+={0,2}$'),
    state       text NOT NULL DEFAULT 'pending',
    created     timestamptz NOT NULL DEFAULT now(),
    activated   timestamptz,
    retired     timestamptz,
    CONSTRAINT dkim_keys_pkey PRIMARY KEY (domain, selector),
    CONSTRAINT dkim_keys_state_dates CHECK (
        (state = 'pending' AND activated IS NULL AND retired IS NULL)
        OR (state = 'active' AND activated IS NOT NULL AND retired IS NULL)
        OR (state = 'retired' AND retired IS NOT NULL))
);
-- the signer's lookup, and the rule: one signing key per domain
CREATE UNIQUE INDEX dkim_keys_one_active ON public.dkim_keys (domain) WHERE state = 'active';
ALTER TABLE public.dkim_keys ALTER COLUMN private_key SET STATISTICS 0;  -- no key samples in pg_statistic
COMMENT ON TABLE public.dkim_keys IS
'DKIM signing keys per hosted domain. Change them with add_dkim_key(), activate_dkim_key(), retire_dkim_key(); mailadmin reads the public parts with dkim_keys_list(); the signer (maildkim) reads the active ones through dkim_signing.';
COMMENT ON COLUMN public.dkim_keys.domain IS 'The signing domain (d=); removing the domain removes its keys.';
COMMENT ON COLUMN public.dkim_keys.selector IS 'The selector (s=), one DNS label, e.g. mb202612: the record is SELECTOR._domainkey.DOMAIN.';
COMMENT ON COLUMN public.dkim_keys.algorithm IS 'rsa-sha256 (RSA 2048) or ed25519-sha256 (RFC 8463).';
COMMENT ON COLUMN public.dkim_keys.private_key IS 'The private key, PEM (PKCS#8). Read by mailowner and, for active keys, by maildkim only.';
COMMENT ON COLUMN public.dkim_keys.public_key IS 'The public key as the DNS record''s p= value (base64).';
COMMENT ON COLUMN public.dkim_keys.state IS 'pending (published, not signing yet), active (signing), retired (signs no more).';
COMMENT ON COLUMN public.dkim_keys.created IS 'When the key was added.';
COMMENT ON COLUMN public.dkim_keys.activated IS 'When it started signing.';
COMMENT ON COLUMN public.dkim_keys.retired IS 'When it stopped signing (or was withdrawn while pending).';

CREATE TRIGGER audit_insert AFTER INSERT ON public.dkim_keys
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('domain', 'selector');
CREATE TRIGGER audit_delete AFTER DELETE ON public.dkim_keys
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('domain', 'selector');
CREATE TRIGGER audit_update AFTER UPDATE ON public.dkim_keys
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('domain', 'selector');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.dkim_keys
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- What OpenDKIM reads: KeyTable (key name = domain -> domain, selector, private_key) and
-- SigningTable (sender's domain -> key name) are both lookups on this view by domain.
-- The active keys only: a pending key does not sign yet, a retired one no more.
CREATE VIEW public.dkim_signing AS
    SELECT k.domain, k.selector, k.private_key
      FROM public.dkim_keys k
     WHERE k.state = 'active';
COMMENT ON VIEW public.dkim_signing IS
'OpenDKIM''s KeyTable and SigningTable (dsn:pgsql:// lookups by domain, `mailbook dkim install`): each domain''s active key. Read by maildkim only.';

-- The private key on its way in: `mailbook dkim add` COPYs one row, add_dkim_key() moves
-- it into dkim_keys and deletes it, in one transaction. UNLOGGED: the row never reaches
-- the WAL. batch is only ever its DEFAULT, the inserting transaction (mailadmin may
-- insert the key columns and no other), so nobody can hand another admin's call a key.
CREATE UNLOGGED TABLE public.dkim_key_staging (
    private_key text NOT NULL,
    public_key  text NOT NULL,
    batch       xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
ALTER TABLE public.dkim_key_staging ALTER COLUMN private_key SET STATISTICS 0;
COMMENT ON TABLE public.dkim_key_staging IS
'A DKIM key pair on its way into dkim_keys: COPYed by `mailbook dkim add` (COPY data is never logged) and taken by add_dkim_key() in the same transaction.';
COMMENT ON COLUMN public.dkim_key_staging.private_key IS 'PEM (PKCS#8).';
COMMENT ON COLUMN public.dkim_key_staging.public_key IS 'The p= value (base64).';
COMMENT ON COLUMN public.dkim_key_staging.batch IS 'The inserting transaction.';

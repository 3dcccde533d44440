-- DKIM key rotation (issue 34): `mailbook dkim rotate` adds a domain's next key, and
-- `mailbook dkim advance` (cron) activates it once its DNS record is seen, then retires
-- the previous key after a delay; and the signer's lookup by the sender's domain, so an
-- alias domain without a key of its own is signed with its target's.
-- * dkim_keys.activate_when_published: a pending key that advance_dkim_key() activates
--   as soon as its record is published (set by rotate_dkim_key(); `dkim add` keys stay
--   for a manual `dkim activate`).
-- * A new state, retiring: the key signs no more (its successor does) but its record
--   must stay published until retire_after, so that mail signed just before the switch
--   still verifies when it arrives (or is re-verified); retire_dkim_keys_due() then
--   makes it retired. It keeps activated, and retired says when it stopped signing.
-- * dkim_signing gains sender_domain (what OpenDKIM's KeyTable and SigningTable look up
--   since this release; the columns before it are unchanged, so an opendkim.conf from
--   before, looking up domain, keeps signing each domain's own mail as it did): one row
--   per domain with an active key, plus one per alias domain without an active key of
--   its own whose target has one, carrying the target's key (d= the target).
-- depends: 0216_add_mailbox_rename

ALTER TABLE public.dkim_keys
    ADD COLUMN activate_when_published boolean NOT NULL DEFAULT false,
    ADD COLUMN retire_after timestamptz,
    DROP CONSTRAINT dkim_keys_state_dates,
    ADD CONSTRAINT dkim_keys_state_dates CHECK (
        (state = 'pending' AND activated IS NULL AND retired IS NULL AND retire_after IS NULL)
        OR (state = 'active' AND activated IS NOT NULL AND retired IS NULL AND retire_after IS NULL)
        OR (state = 'retiring' AND activated IS NOT NULL AND retired IS NOT NULL AND retire_after IS NOT NULL)
        OR (state = 'retired' AND retired IS NOT NULL));
-- one rotation at a time per domain: advance has one key to look for
CREATE UNIQUE INDEX dkim_keys_one_rotation ON public.dkim_keys (domain)
    WHERE state = 'pending' AND activate_when_published;
-- retire_dkim_keys_due(): the keys whose delay is over
CREATE INDEX dkim_keys_retiring ON public.dkim_keys (retire_after) WHERE state = 'retiring';
COMMENT ON COLUMN public.dkim_keys.state IS
'pending (published, not signing yet), active (signing), retiring (signs no more; its record stays published until retire_after), retired (signs no more; its record may go).';
COMMENT ON COLUMN public.dkim_keys.retired IS 'When it stopped signing (or was withdrawn while pending).';
COMMENT ON COLUMN public.dkim_keys.activate_when_published IS
'A rotation''s next key (rotate_dkim_key()): advance_dkim_key() activates it once DNS answers its p= value.';
COMMENT ON COLUMN public.dkim_keys.retire_after IS
'A retiring key: when retire_dkim_keys_due() retires it (its successor''s activation plus the delay).';

-- keycol sender_domain in opendkim.conf: SigningTable maps it to itself (the key name),
-- KeyTable the key name to (d=, s=, key). Columns only added at the end (OR REPLACE).
CREATE OR REPLACE VIEW public.dkim_signing AS
    SELECT k.domain, k.selector, k.private_key, k.domain AS sender_domain
      FROM public.dkim_keys k
     WHERE k.state = 'active'
    UNION ALL
    SELECT k.domain, k.selector, k.private_key, t.domain
      FROM public.transports t
      JOIN public.dkim_keys k ON k.domain = t.alias_of AND k.state = 'active'
     WHERE NOT EXISTS (SELECT FROM public.dkim_keys own WHERE own.domain = t.domain AND own.state = 'active');
COMMENT ON VIEW public.dkim_signing IS
'OpenDKIM''s KeyTable and SigningTable (dsn:pgsql:// lookups by sender_domain, `mailbook dkim install`): the key each sending domain signs with, its own active key, or for an alias domain without one its target''s (d= the target). Read by maildkim only.';
COMMENT ON COLUMN public.dkim_signing.sender_domain IS 'The domain of the From: address, what OpenDKIM looks up.';
COMMENT ON COLUMN public.dkim_signing.domain IS 'The signing domain (d=).';

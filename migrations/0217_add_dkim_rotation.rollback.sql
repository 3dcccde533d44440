-- Undo 0217_add_dkim_rotation: rotations, the retiring state, the view's sender_domain.
-- Refused while a rotation is under way (rolling back would leave its next key pending
-- for ever, or let an old key's record be removed while mail signed with it is in
-- transit). An opendkim.conf written since 0217 looks up sender_domain: re-run the older
-- `mailbook dkim install` after rolling back.
DO $refuse$
BEGIN
    IF EXISTS (SELECT FROM public.dkim_keys WHERE state = 'retiring'
                                               OR (state = 'pending' AND activate_when_published)) THEN
        RAISE EXCEPTION 'DKIM rotations are under way: let them finish (mailbook dkim advance), or retire their keys (mailbook dkim retire), first'
              USING ERRCODE = '2BP01';
    END IF;
END
$refuse$;
DROP VIEW public.dkim_signing;
CREATE VIEW public.dkim_signing AS
    SELECT k.domain, k.selector, k.private_key
      FROM public.dkim_keys k
     WHERE k.state = 'active';
COMMENT ON VIEW public.dkim_signing IS
'OpenDKIM''s KeyTable and SigningTable (dsn:pgsql:// lookups by domain, `mailbook dkim install`): each domain''s active key. Read by maildkim only.';
GRANT SELECT ON public.dkim_signing TO maildkim;
DROP INDEX public.dkim_keys_retiring;
DROP INDEX public.dkim_keys_one_rotation;
ALTER TABLE public.dkim_keys
    DROP CONSTRAINT dkim_keys_state_dates,
    DROP COLUMN retire_after,
    DROP COLUMN activate_when_published,
    ADD CONSTRAINT dkim_keys_state_dates CHECK (
        (state = 'pending' AND activated IS NULL AND retired IS NULL)
        OR (state = 'active' AND activated IS NOT NULL AND retired IS NULL)
        OR (state = 'retired' AND retired IS NOT NULL));
COMMENT ON COLUMN public.dkim_keys.state IS 'pending (published, not signing yet), active (signing), retired (signs no more).';

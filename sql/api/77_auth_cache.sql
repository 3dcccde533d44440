-- What `mailbook dovecot follow` (mailbook/authcache.py) reads to flush Dovecot's auth
-- cache user by user: the record of migration 0205_add_auth_cache_changes.

-- auth_cache_changed_users(since) -> (email)
-- Caller: `mailbook dovecot follow`, as mailauth (Dovecot's own role, which reads every
-- address anyway), in a REPEATABLE READ READ ONLY transaction that also takes
-- pg_current_snapshot() as the next since. Runs as mailowner.
-- since: the snapshot of the follower's previous batch. Returns each mailbox whose
-- cached answers a transaction that this snapshot sees and since did not made stale:
-- the addresses recorded, and every current mailbox of a domain recorded; one NULL row
-- for a TRUNCATE (flush every user). Raises 55000 if prune_auth_cache_changes() may
-- have deleted such a row (the follower then flushes every user).
CREATE FUNCTION public.auth_cache_changed_users(since pg_snapshot) RETURNS TABLE (email text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pruned xid8;
BEGIN
    SELECT h.pruned_xid INTO pruned FROM public.auth_cache_changes_horizon h;
    IF pruned IS NOT NULL AND pruned >= pg_snapshot_xmin(since) THEN
        RAISE EXCEPTION 'changes since snapshot % were pruned (up to transaction %)', since, pruned
              USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'flush the whole cache';
    END IF;
    RETURN QUERY
        WITH c AS (
            SELECT DISTINCT a.domain, a.email FROM public.auth_cache_changes a
             WHERE a.xid >= pg_snapshot_xmin(since)
               AND pg_visible_in_snapshot(a.xid, pg_current_snapshot())
               AND NOT pg_visible_in_snapshot(a.xid, since)
        )
        SELECT c.email FROM c WHERE c.email IS NOT NULL
        UNION
        SELECT u.email FROM c JOIN public.users u ON u.domain = c.domain WHERE c.email IS NULL
        UNION
        SELECT NULL FROM c WHERE c.domain IS NULL AND c.email IS NULL;
END
$$;
REVOKE ALL ON FUNCTION public.auth_cache_changed_users(pg_snapshot) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.auth_cache_changed_users(pg_snapshot) TO mailauth, mailadmin;

-- prune_auth_cache_changes(older_than) -> rows deleted
-- Caller: `mailbook dovecot follow`, as mailauth, about once an hour (its --keep), and
-- members of mailadmin. Runs as mailowner. Deletes the change records older than
-- older_than (default 1 day, at least 1 hour) and records the newest transaction deleted
-- in auth_cache_changes_horizon, so that a follower whose last snapshot is older flushes
-- every user instead of missing a change (the worst a caller can do: no record is
-- needed once every follower has flushed it). Raises 22023 for less than 1 hour.
CREATE FUNCTION public.prune_auth_cache_changes(older_than interval DEFAULT '1 day') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    deleted bigint;
    newest xid8;
BEGIN
    IF older_than IS NULL OR older_than < interval '1 hour' THEN
        RAISE EXCEPTION 'retention % is shorter than 1 hour', coalesce(older_than::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH gone AS (
        DELETE FROM public.auth_cache_changes c WHERE c.changed_at < now() - older_than RETURNING c.xid
    )
    SELECT count(*), max(g.xid) INTO deleted, newest FROM gone g;
    IF newest IS NOT NULL THEN
        UPDATE public.auth_cache_changes_horizon h
           SET pruned_xid = CASE WHEN h.pruned_xid IS NULL OR h.pruned_xid < newest THEN newest ELSE h.pruned_xid END,
               pruned_at = now();
    END IF;
    RETURN deleted;
END
$$;
REVOKE ALL ON FUNCTION public.prune_auth_cache_changes(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.prune_auth_cache_changes(interval) TO mailauth, mailadmin;

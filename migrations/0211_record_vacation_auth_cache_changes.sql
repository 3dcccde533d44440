-- Dovecot's userdb answers sieve_before (the vacation script from SQL) only for mailboxes
-- with a reply due or still to come (user_query, dovecot/dovecot-sql.conf.ext): every
-- other delivery then reads no script from SQL (issue 35: two dict queries per delivery
-- were most of mailbook's cost over Dovecot's floor). That answer sits in Dovecot's auth
-- cache like the quota, so a vacation set, moved or cleared makes it stale: this records
-- the mailbox in auth_cache_changes (0205) for `mailbook dovecot follow` to flush, in the
-- same transaction:
-- * vacations: the address on INSERT and DELETE, and on an UPDATE of email or ends (what
--   user_query reads; subject, body, days and starts are read at delivery through the
--   dict, which the cached answer already points at);
-- * TRUNCATE: NULL, NULL (every user).
-- Without a follower a new reply starts within auth_cache_ttl (900 s as shipped); a
-- cleared or ended one stops at once (the dict has no script for it any more).
-- depends: 0210_add_last_login

CREATE FUNCTION public.vacations_auth_cache_changes() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT n.email FROM new_rows n));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT o.email FROM old_rows o));
    ELSE  -- the rows whose email or ends changed, old and new
        PERFORM public.record_auth_cache_changes(NULL, ARRAY(SELECT c.email FROM (
            (SELECT o.email, o.ends FROM old_rows o EXCEPT SELECT n.email, n.ends FROM new_rows n)
            UNION
            (SELECT n.email, n.ends FROM new_rows n EXCEPT SELECT o.email, o.ends FROM old_rows o)) c));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER vacations_auth_cache_changes_insert AFTER INSERT ON public.vacations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.vacations_auth_cache_changes();
CREATE TRIGGER vacations_auth_cache_changes_update AFTER UPDATE ON public.vacations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.vacations_auth_cache_changes();
CREATE TRIGGER vacations_auth_cache_changes_delete AFTER DELETE ON public.vacations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.vacations_auth_cache_changes();
CREATE TRIGGER vacations_auth_cache_changes_truncate AFTER TRUNCATE ON public.vacations
    FOR EACH STATEMENT EXECUTE FUNCTION public.truncate_auth_cache_changes();

COMMENT ON FUNCTION public.vacations_auth_cache_changes() IS 'Trigger: a vacation reply added or removed, or whose email or ends changed (old and new address): Dovecot''s userdb answers sieve_before from them.';

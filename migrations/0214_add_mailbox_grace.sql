-- Delete with a grace period (issue 33, item 6): remove_mailbox(email, keep_days) can keep
-- a removed mailbox restorable for keep_days days. Why a table of its own rather than a
-- state on users:
-- * The users row really goes: Postfix's maps, Dovecot's passdb/userdb/iterate queries,
--   the mailboxes view, domain and reseller limits (0105, 0208), send-as lookups and every
--   other reader of users see no mailbox, without one of their queries changing (mail to
--   it gets 550 "User unknown", logins fail). A state column would have to be added to
--   every lookup, now and in every future one, and one forgotten filter delivers mail to
--   a "removed" mailbox or lets it log in.
-- * The row, hash included, and what went with it (its rows in the tables that reference
--   users, and the alias rows that forwarded to it) are kept as jsonb in removed_mailboxes,
--   so restore_mailbox() puts back exactly what was there, columns added to those tables
--   later (0213's among them) included. Only mailowner reads it.
-- * Nothing of it may be reused meanwhile: its address is refused for a new mailbox or a
--   new alias, and its maildir for a new mailbox at, above or below it (the nested-maildir
--   rule of 0106, extended to removed mailboxes), by statement triggers, so the API, the
--   import and the owner's DML alike. Race-free like 0106: a grace removal takes the lock
--   row of its maildir's first segment (maildir_roots), as every writer of users does
--   before its check. Such a check that meets a removed mailbox whose window has passed
--   retires it first (its maildir is queued for purging, unless the new mailbox takes that
--   very path back, as with an immediately removed one).
-- * The maildir is not queued for purging while restorable; expire_removed_mailboxes()
--   (sql/api/80_maildirs.sql, run by `mailbook maildirs purge`) queues it after the window.
-- depends: 0213_add_login_networks

CREATE TABLE public.removed_mailboxes (
    email       text PRIMARY KEY
                CONSTRAINT removed_mailboxes_email_valid CHECK (public.address_error(email) IS NULL),
    domain      text NOT NULL GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED,
    maildir     text COLLATE "C" NOT NULL
                CONSTRAINT removed_mailboxes_maildir_unique UNIQUE
                CONSTRAINT removed_mailboxes_maildir_safe CHECK (public.maildir_error(maildir) IS NULL),
    removed     timestamptz NOT NULL DEFAULT now(),
    removed_by  name NOT NULL DEFAULT session_user,
    purge_after timestamptz NOT NULL,
    mailbox     jsonb NOT NULL
                CONSTRAINT removed_mailboxes_mailbox_is_its_row CHECK (mailbox ->> 'email' = email AND mailbox ->> 'maildir' = maildir),
    kept        jsonb NOT NULL DEFAULT '{}'
                CONSTRAINT removed_mailboxes_kept_object CHECK (jsonb_typeof(kept) = 'object'),
    CONSTRAINT removed_mailboxes_window CHECK (purge_after > removed)
);
-- no hash samples in pg_statistic
ALTER TABLE public.removed_mailboxes ALTER COLUMN mailbox SET STATISTICS 0;
ALTER TABLE public.removed_mailboxes ALTER COLUMN kept SET STATISTICS 0;
CREATE INDEX removed_mailboxes_purge_after_idx ON public.removed_mailboxes (purge_after);
COMMENT ON TABLE public.removed_mailboxes IS
'Mailboxes removed with a grace period (remove_mailbox(email, keep_days)): restorable with restore_mailbox() until purge_after, then expire_removed_mailboxes() queues the maildir for purging. Meanwhile no lookup sees them, and their address and maildir are not reusable. Read by mailowner only (hashes); list them with removed_mailboxes_list().';
COMMENT ON COLUMN public.removed_mailboxes.email IS 'The removed mailbox''s address; no new mailbox or alias may take it meanwhile.';
COMMENT ON COLUMN public.removed_mailboxes.domain IS 'The address''s domain (a generated column), for a customer''s admin''s scope.';
COMMENT ON COLUMN public.removed_mailboxes.maildir IS 'Its maildir, kept on disk; no new mailbox''s maildir may be at, above or below it meanwhile.';
COMMENT ON COLUMN public.removed_mailboxes.removed IS 'When it was removed.';
COMMENT ON COLUMN public.removed_mailboxes.removed_by IS 'The login that removed it (session_user).';
COMMENT ON COLUMN public.removed_mailboxes.purge_after IS 'The end of the grace period: restorable before, its maildir queued for purging after.';
COMMENT ON COLUMN public.removed_mailboxes.mailbox IS 'Its users row as it was (to_jsonb), password hash included.';
COMMENT ON COLUMN public.removed_mailboxes.kept IS 'What went with it, by table: {"aliases": [rows that forwarded to it], "send_as": [...], "vacations": [...], "app_passwords": [...], "last_logins": [...], "quota_usage": [...]}.';

-- audited by key (audit_update logs the names of changed columns only, never the hashes)
CREATE TRIGGER audit_insert AFTER INSERT ON public.removed_mailboxes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.removed_mailboxes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.removed_mailboxes
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.removed_mailboxes
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- removed_maildirs_around(path) -> table(maildir, email, purge_after): the removed
-- mailboxes whose maildir is path, lies above it or below it (the first one below), as
-- maildirs_around() does for users (0106).
CREATE FUNCTION public.removed_maildirs_around(path text) RETURNS TABLE (maildir text, email text, purge_after timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $f$
SELECT p.maildir, p.email, p.purge_after FROM public.removed_mailboxes p
 WHERE p.maildir = removed_maildirs_around.path
    OR p.maildir = ANY (ARRAY(SELECT public.maildir_parents(removed_maildirs_around.path)))
UNION ALL
(SELECT c.maildir, c.email, c.purge_after FROM public.removed_mailboxes c
  WHERE c.maildir > removed_maildirs_around.path AND c.maildir < removed_maildirs_around.path || pg_catalog.chr(127)
    AND pg_catalog.starts_with(c.maildir, removed_maildirs_around.path)
  ORDER BY c.maildir LIMIT 1)
$f$;
COMMENT ON FUNCTION public.removed_maildirs_around(text) IS 'The maildirs of removed (restorable) mailboxes at a path, above it, and the first one inside it.';

-- removed_address_error(address) -> text: why a new mailbox or alias may not take that
-- (lower-cased) address now, naming it and the end of its window; NULL when it may.
-- Used by the trigger below and by new_mailbox() (before the CLI asks for a password).
CREATE FUNCTION public.removed_address_error(address text) RETURNS text
LANGUAGE sql STABLE
AS $f$
SELECT format('%s belongs to a mailbox removed with a grace period: it can be restored, or reused after %s',
              public.quoted(r.email), to_char(r.purge_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'))
  FROM public.removed_mailboxes r
 WHERE r.email = removed_address_error.address AND r.purge_after > now()
$f$;
COMMENT ON FUNCTION public.removed_address_error(text) IS 'Why an address may not be taken now (a restorable removed mailbox holds it), or NULL.';

-- retire_removed_mailboxes(addresses, maildirs) -> void: the removed mailboxes whose
-- window has passed and whose address is among addresses, or whose maildir meets one of
-- maildirs, leave removed_mailboxes; their maildirs join the purge queue, unless one of
-- maildirs is that very path (a new mailbox takes the directory back, as 0108 does).
-- Caller: refuse_removed_mailbox_reuse() below, before it looks for live ones.
CREATE FUNCTION public.retire_removed_mailboxes(addresses text[], maildirs text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    WITH gone AS (
        DELETE FROM public.removed_mailboxes r
         WHERE r.purge_after <= now()
           AND (r.email = ANY (addresses)
                OR r.maildir IN (SELECT a.maildir FROM unnest(maildirs) m, public.removed_maildirs_around(m) a))
        RETURNING r.maildir, r.email)
    INSERT INTO public.maildir_purge_queue (maildir, email)
    SELECT g.maildir, g.email FROM gone g WHERE NOT g.maildir = ANY (coalesce(maildirs, '{}'))
    ON CONFLICT (maildir) DO UPDATE SET email = excluded.email;
END
$$;
COMMENT ON FUNCTION public.retire_removed_mailboxes(text[], text[]) IS 'Moves removed mailboxes past their window that a new address or maildir meets into the purge queue.';

-- refuse_removed_mailbox_reuse(): AFTER INSERT / UPDATE ... FOR EACH STATEMENT on users
-- (address and maildir) and on aliases (the alias address). Retires what has expired
-- (above), then raises 23505 for an address, or a maildir, a removed mailbox still holds,
-- and 23P01 for a maildir above or below one, naming both and the end of the window.
-- Runs after users_maildirs_apart (triggers fire by name), which took the lock rows of
-- the written maildirs' first segments.
CREATE FUNCTION public.refuse_removed_mailbox_reuse() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addresses text[];
    maildirs  text[];
    bad       record;
BEGIN
    IF NOT EXISTS (SELECT FROM public.removed_mailboxes) THEN  -- usually empty: imports pay nothing
        RETURN NULL;
    END IF;
    -- an UPDATE checks only the values it changed (a password change passes untouched)
    IF TG_TABLE_NAME = 'users' AND TG_OP = 'INSERT' THEN
        addresses := ARRAY(SELECT n.email FROM new_rows n);
        maildirs := ARRAY(SELECT n.maildir FROM new_rows n);
    ELSIF TG_TABLE_NAME = 'users' THEN
        addresses := ARRAY(SELECT n.email FROM new_rows n EXCEPT SELECT o.email FROM old_rows o);
        maildirs := ARRAY(SELECT n.maildir FROM new_rows n EXCEPT SELECT o.maildir FROM old_rows o);
    ELSIF TG_OP = 'INSERT' THEN
        addresses := ARRAY(SELECT n.alias FROM new_rows n);
        maildirs := '{}';
    ELSE
        addresses := ARRAY(SELECT n.alias FROM new_rows n EXCEPT SELECT o.alias FROM old_rows o);
        maildirs := '{}';
    END IF;
    PERFORM public.retire_removed_mailboxes(addresses, maildirs);
    SELECT a.address, public.removed_address_error(a.address) AS problem INTO bad
      FROM unnest(addresses) a(address)
     WHERE public.removed_address_error(a.address) IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%', bad.problem USING ERRCODE = '23505', HINT = format('mailbook mailbox restore %s', bad.address);
    END IF;
    SELECT m.maildir AS written, a.maildir, a.email, a.purge_after INTO bad
      FROM unnest(maildirs) m(maildir), LATERAL public.removed_maildirs_around(m.maildir) a
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'maildir % %maildir % of the removed mailbox %, kept until % (restorable until then)',
              public.quoted(bad.written),
              CASE WHEN bad.maildir = bad.written THEN 'is the '
                   WHEN bad.maildir < bad.written THEN 'lies inside the '
                   ELSE 'would contain the ' END,
              public.quoted(bad.maildir), public.quoted(bad.email),
              to_char(bad.purge_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
              USING ERRCODE = CASE WHEN bad.maildir = bad.written THEN '23505' ELSE '23P01' END,
                    HINT = 'each mailbox needs a directory of its own, neither above nor below a removed mailbox''s while it can be restored';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION public.refuse_removed_mailbox_reuse() IS 'Trigger: no new mailbox or alias takes a restorable removed mailbox''s address, and no maildir lies at, above or below its maildir.';

CREATE TRIGGER users_removed_apart AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_removed_mailbox_reuse();
CREATE TRIGGER users_removed_apart_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_removed_mailbox_reuse();
CREATE TRIGGER aliases_removed_apart AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_removed_mailbox_reuse();
CREATE TRIGGER aliases_removed_apart_on_update AFTER UPDATE ON public.aliases
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_removed_mailbox_reuse();

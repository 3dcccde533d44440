-- No maildir may contain, or lie inside, another mailbox's maildir. Before this, a
-- mailadmin could add spy@ with maildir 'other.org/boss/.Archive/' and read boss's
-- archive over IMAP, or evil@ with 'example.com/', whose removal queued every mailbox of
-- example.com for `mailbook maildirs purge`. The rule lives in the table (a statement
-- trigger), so the API, an import and the owner's own DML all obey it.
--
-- Race-free: every statement that writes maildirs first updates one row per first path
-- segment in maildir_roots (two nested maildirs always share their first segment), so
-- two sessions writing under the same segment take turns. Under READ COMMITTED the
-- second one's check then sees the first one's rows; under REPEATABLE READ or
-- SERIALIZABLE it fails with 40001 and retries, as PostgreSQL does for any row updated
-- concurrently. An exclusion constraint would need a GiST index: building one over
-- 1,000,000 maildirs took 216 s here, against 0.7 s for the check below.
--
-- maildir becomes COLLATE "C": paths compare byte by byte, so the maildirs below
-- 'example.com/' are one range of the unique index, whatever the database's locale.
--
-- Rows that break the rule already are not rewritten (the mail is where they point):
-- this migration lists them as a WARNING, `mailbook doctor` fails while any remain, and
-- changing either row's maildir is checked like any other write.
-- depends: 0025_cheaper_address_and_hash_fast_paths

-- the API functions that return mailboxes rows depend on the view's row type; `migrate
-- apply` re-creates the whole API right after the migrations
DO $drop$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
              WHERE p.prorettype = 'public.mailboxes'::regtype
    LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END
$drop$;
DROP VIEW public.mailboxes;
ALTER TABLE public.users ALTER COLUMN maildir TYPE text COLLATE "C";
CREATE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified, disabled_services, quota_messages
  FROM public.users;

-- maildir_parents(maildir): every directory above a maildir, itself excluded:
-- 'a/b/c/' -> 'a/', 'a/b/'. A maildir nests in another exactly when one is a parent of
-- the other.
CREATE FUNCTION public.maildir_parents(maildir text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT array_to_string((string_to_array(maildir, '/'))[1:k], '/') || '/'
  FROM generate_series(1, length(maildir) - length(replace(maildir, '/', '')) - 1) AS k
$f$;

-- maildirs_around(path) -> table(maildir, email): the mailboxes whose maildir lies
-- above path (every one) or below it (the first: one is enough to refuse or keep), never
-- itself. Parents by equality in the unique index, children as the index range of paths
-- that start with it (chr(127) sorts after every character a maildir may hold). Used by
-- the trigger below and by maildir_in_use() (the purge).
CREATE FUNCTION public.maildirs_around(path text) RETURNS TABLE (maildir text, email text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $f$
SELECT p.maildir, p.email FROM public.users p
 WHERE p.maildir IN (SELECT public.maildir_parents(maildirs_around.path))
UNION ALL
(SELECT c.maildir, c.email FROM public.users c
  WHERE c.maildir > maildirs_around.path AND c.maildir < maildirs_around.path || pg_catalog.chr(127)
    AND pg_catalog.starts_with(c.maildir, maildirs_around.path)
  ORDER BY c.maildir LIMIT 1)
$f$;

-- one row per first path segment, updated by every statement that writes a maildir
-- under it (see above); nobody but mailowner reads or writes it
CREATE TABLE public.maildir_roots (
    root text COLLATE "C" PRIMARY KEY
);
COMMENT ON TABLE public.maildir_roots IS
    'Lock rows: a statement writing maildirs updates the row of each first path segment, so nesting checks take turns';

-- refuse_nested_maildirs(): AFTER INSERT / UPDATE ... FOR EACH STATEMENT on users.
-- Checks the maildirs the statement wrote (an UPDATE that kept them costs one probe).
-- First it takes the lock rows of their first segments, unless this transaction holds
-- users in ACCESS EXCLUSIVE mode (an initial load: nobody else can write it anyway).
-- A big statement (10,000 rows or more, such as an initial load, which sets the indexes
-- aside) then sorts the whole table once: if no maildir starts with the one before it,
-- none nests at all (the maildirs below a path sort right after it). Otherwise, or for
-- a small statement, each written maildir is probed in the index (maildirs_around()).
-- Raises 23P01 naming both mailboxes.
CREATE FUNCTION public.refuse_nested_maildirs() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written text[];  -- an UPDATE's changed maildirs; NULL for an INSERT: all of new_rows
    n       bigint;
    bad     record;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        written := ARRAY(SELECT n.maildir FROM new_rows n EXCEPT SELECT o.maildir FROM old_rows o);
        n := cardinality(written);
    ELSE
        SELECT count(*) INTO n FROM new_rows;
    END IF;
    IF n = 0 THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_locks l
                    WHERE l.locktype = 'relation' AND l.relation = 'public.users'::regclass
                      AND l.pid = pg_catalog.pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND l.granted) THEN
        -- take turns with every other writer under the same first segments, in one order
        INSERT INTO public.maildir_roots AS r (root)
        SELECT DISTINCT split_part(w.maildir, '/', 1)
          FROM (SELECT unnest(written) UNION ALL SELECT n.maildir FROM new_rows n WHERE written IS NULL) AS w(maildir)
         ORDER BY 1
        ON CONFLICT (root) DO UPDATE SET root = excluded.root;
    END IF;
    IF n >= 10000 AND NOT EXISTS (
        SELECT FROM (SELECT u.maildir, lag(u.maildir) OVER (ORDER BY u.maildir) AS before
                       FROM public.users u) s
         WHERE starts_with(s.maildir, s.before)) THEN
        RETURN NULL;
    END IF;
    SELECT w.maildir, m.email, u.maildir AS other, u.email AS other_email, u.maildir < w.maildir AS inside
      INTO bad
      FROM (SELECT unnest(written) UNION ALL SELECT n.maildir FROM new_rows n WHERE written IS NULL) AS w(maildir)
      JOIN public.users m ON m.maildir = w.maildir
      JOIN LATERAL (SELECT a.maildir, a.email FROM public.maildirs_around(w.maildir) a LIMIT 1) u ON true
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'maildir % of % %', public.quoted(bad.maildir), public.quoted(bad.email),
              CASE WHEN bad.inside THEN 'lies inside the maildir ' ELSE 'would contain the maildir ' END
              || public.quoted(bad.other) || ' of ' || public.quoted(bad.other_email)
              USING ERRCODE = '23P01',
                    HINT = 'each mailbox needs a directory of its own, neither above nor below another mailbox''s';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_maildirs_apart AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_nested_maildirs();
CREATE TRIGGER users_maildirs_apart_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_nested_maildirs();

-- nested_maildirs: every pair that breaks the rule (rows older than it); what
-- `mailbook doctor` reports. Empty on a database that never had such rows.
CREATE VIEW public.nested_maildirs AS
SELECT o.maildir AS outer_maildir, o.email AS outer_email, i.maildir AS inner_maildir, i.email AS inner_email
  FROM public.users i
 CROSS JOIN LATERAL public.maildir_parents(i.maildir) AS p(parent)
  JOIN public.users o ON o.maildir = p.parent;

DO $report$
DECLARE
    pair record;
BEGIN
    FOR pair IN SELECT * FROM public.nested_maildirs ORDER BY 1, 3 LOOP
        RAISE WARNING 'maildir % of % lies inside the maildir % of %: give one of them a directory of its own',
              public.quoted(pair.inner_maildir), public.quoted(pair.inner_email),
              public.quoted(pair.outer_maildir), public.quoted(pair.outer_email);
    END LOOP;
END
$report$;

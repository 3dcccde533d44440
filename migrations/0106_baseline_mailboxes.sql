-- users: one row per mailbox, the tutorial's columns first so its INSERT keeps working.
-- The domain is derived from the address and must be a hosted mailbox domain (the
-- triggers of 0105). Passwords are stored as hashes in Dovecot's {SCHEME} form; a
-- plaintext cannot pass the CHECK. A mailbox may be kept out of single services
-- (disabled_services, checked by Dovecot's password_query for %{service}; Postfix's
-- submission authenticates through Dovecot as smtp) and have a quota in bytes and in
-- messages, handed to Dovecot's userdb as quota_rule.
--
-- Maildirs: two mailboxes never share one (UNIQUE), and none may contain or lie inside
-- another's: otherwise a mailadmin could add spy@ with maildir 'other.org/boss/.Archive/'
-- and read boss's archive over IMAP, or evil@ with 'example.com/', whose removal would
-- queue a whole domain for purging. A statement trigger keeps the rule for the API, an
-- import and the owner's DML alike. Race-free: every statement that writes maildirs first
-- updates one row per first path segment in maildir_roots (two nested maildirs always
-- share their first segment), so writers under the same segment take turns (under
-- REPEATABLE READ or SERIALIZABLE the second fails with 40001 and retries). An exclusion
-- constraint would need a GiST index: 216 s to build over 1,000,000 maildirs, against
-- 0.7 s for the check. maildir is COLLATE "C": paths compare byte by byte, so the
-- maildirs below 'example.com/' are one range of the unique index whatever the locale.
--
-- quota_usage: each mailbox's bytes and messages as Dovecot counts them, written by
-- Dovecot itself (quota_clone through its dict proxy, as mailquota) after every
-- delivery, expunge and APPEND; mailbook only reads it. Dovecot's statement is
--   INSERT INTO quota_usage (bytes,messages,email) VALUES (…) ON CONFLICT (email)
--   DO UPDATE SET bytes=…,messages=…
-- so mailquota gets INSERT of those columns, UPDATE of the counters and SELECT of the
-- key (sql/api/90_privileges.sql). The row goes with its mailbox; Dovecot writes it
-- again on the mailbox's next change.
--
-- mailboxes: users without the password column, with Dovecot's usage: what mailadmin
-- reads; it never sees a hash.
-- depends: 0105_baseline_domains

CREATE TABLE public.users (
    email             text PRIMARY KEY
                      CONSTRAINT users_email_valid CHECK (public.address_error(email) IS NULL),
    password          text NOT NULL
                      CONSTRAINT users_password_hashed CHECK (public.password_hash_error(password) IS NULL),
    realname          text
                      CONSTRAINT users_realname_printable CHECK (public.realname_error(realname) IS NULL),
    maildir           text COLLATE "C" NOT NULL
                      CONSTRAINT users_maildir_unique UNIQUE
                      CONSTRAINT users_maildir_safe CHECK (public.maildir_error(maildir) IS NULL),
    created           timestamptz NOT NULL DEFAULT now(),
    domain            text NOT NULL GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED,
    quota_bytes       bigint
                      CONSTRAINT users_quota_positive CHECK (quota_bytes > 0),
    active            boolean NOT NULL DEFAULT true,
    modified          timestamptz NOT NULL DEFAULT now(),
    -- the containment operator, not service_list_error(), as in transports (0105)
    disabled_services text[] NOT NULL DEFAULT '{}'
                      CONSTRAINT users_disabled_services_known
                      CHECK (disabled_services <@ ARRAY['imap', 'pop3', 'smtp', 'submission', 'sieve']),
    quota_messages    bigint
                      CONSTRAINT users_quota_messages_positive CHECK (quota_messages > 0)
);
COMMENT ON TABLE public.users IS
'One row per mailbox. Read by Dovecot (as mailauth: password, maildir, quota) and Postfix (as mailreader: address and maildir); never shown to mailadmin with its hash (use the view mailboxes). Change it with add_mailbox(), set_password(), set_mailbox_active(), set_mailbox_quota(), set_mailbox_service(), remove_mailbox().';
COMMENT ON COLUMN public.users.email IS 'The address, lower case: user@domain.';
COMMENT ON COLUMN public.users.password IS 'The password hash with its Dovecot scheme, e.g. {BLF-CRYPT}$2a$10$...; never a plaintext.';
COMMENT ON COLUMN public.users.realname IS 'The user''s name, printable text, at most 255 characters.';
COMMENT ON COLUMN public.users.maildir IS 'The maildir relative to the mail base, ending in "/" (default domain/local/); no "..", never inside another mailbox''s.';
COMMENT ON COLUMN public.users.created IS 'When the mailbox was added.';
COMMENT ON COLUMN public.users.domain IS 'The address''s domain (a generated column), which must be a mailbox domain in transports.';
COMMENT ON COLUMN public.users.quota_bytes IS 'Storage quota in bytes, enforced by Dovecot (at RCPT through quota-status, and in LMTP); NULL: none.';
COMMENT ON COLUMN public.users.active IS 'false: mail to it is refused at RCPT and it cannot log in.';
COMMENT ON COLUMN public.users.modified IS 'When the row last changed.';
COMMENT ON COLUMN public.users.disabled_services IS 'Services this mailbox may not use, beside its domain''s.';
COMMENT ON COLUMN public.users.quota_messages IS 'Message-count quota; NULL: none.';

-- remove_domain and listings filter by domain
CREATE INDEX users_domain_idx ON public.users (domain);

CREATE TRIGGER users_domain_hosted AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER users_domain_hosted_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER domain_limits_on_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();
CREATE TRIGGER domain_limits_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();
CREATE TRIGGER relay_domains_hold_no_mailboxes AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_mailboxes_in_relay_domains();

-- audit (0103): key the address
CREATE TRIGGER audit_insert AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.users
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.users
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- nested maildirs (see above)
-- maildir_parents(maildir): every directory above a maildir, itself excluded:
-- 'a/b/c/' -> 'a/', 'a/b/'. A maildir nests in another exactly when one is a parent of
-- the other.
CREATE FUNCTION public.maildir_parents(maildir text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT array_to_string((string_to_array(maildir, '/'))[1:k], '/') || '/'
  FROM generate_series(1, length(maildir) - length(replace(maildir, '/', '')) - 1) AS k
$f$;
COMMENT ON FUNCTION public.maildir_parents(text) IS 'Every parent path of a maildir, to find one maildir inside another.';

-- (parents: one array probed in the unique index; `IN (SELECT ...)` made the planner
-- hash them against a sequential scan of users once per written maildir)
-- maildirs_around(path) -> table(maildir, email): the mailboxes whose maildir lies
-- above path (every one) or below it (the first: one is enough to refuse or keep), never
-- itself. Parents by equality in the unique index, children as the index range of paths
-- that start with it (chr(127) sorts after every character a maildir may hold). Used by
-- the trigger below and by maildir_in_use() (the purge).
CREATE FUNCTION public.maildirs_around(path text) RETURNS TABLE (maildir text, email text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $f$
SELECT p.maildir, p.email FROM public.users p
 WHERE p.maildir = ANY (ARRAY(SELECT public.maildir_parents(maildirs_around.path)))
UNION ALL
(SELECT c.maildir, c.email FROM public.users c
  WHERE c.maildir > maildirs_around.path AND c.maildir < maildirs_around.path || pg_catalog.chr(127)
    AND pg_catalog.starts_with(c.maildir, maildirs_around.path)
  ORDER BY c.maildir LIMIT 1)
$f$;
COMMENT ON FUNCTION public.maildirs_around(text) IS 'The maildirs (and their mailboxes) that contain the given path, and the first one inside it.';

-- one row per first path segment, updated by every statement that writes a maildir
-- under it; nobody but mailowner reads or writes it
CREATE TABLE public.maildir_roots (
    root text COLLATE "C" PRIMARY KEY
);
COMMENT ON TABLE public.maildir_roots IS
'Internal: one row per first path segment of the maildirs, the lock that keeps concurrent writers from nesting one maildir inside another.';
COMMENT ON COLUMN public.maildir_roots.root IS 'A maildir''s first path segment.';

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
COMMENT ON FUNCTION public.refuse_nested_maildirs() IS 'Trigger: no maildir inside another mailbox''s.';

CREATE TRIGGER users_maildirs_apart AFTER INSERT ON public.users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_nested_maildirs();
CREATE TRIGGER users_maildirs_apart_on_update AFTER UPDATE ON public.users
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_nested_maildirs();

-- every pair that breaks the rule (rows stored before it existed); what `mailbook
-- doctor` reports
CREATE VIEW public.nested_maildirs AS
SELECT o.maildir AS outer_maildir, o.email AS outer_email, i.maildir AS inner_maildir, i.email AS inner_email
  FROM public.users i
 CROSS JOIN LATERAL public.maildir_parents(i.maildir) AS p(parent)
  JOIN public.users o ON o.maildir = p.parent;
COMMENT ON VIEW public.nested_maildirs IS
'Pairs of mailboxes whose maildirs nest (one inside the other): rows older than the rule; empty on a database built by mailbook.';

-- Dovecot's counts (see above)
CREATE TABLE public.quota_usage (
    email    text PRIMARY KEY
             REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    bytes    bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0,
    measured timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.quota_usage IS
'Each mailbox''s usage as Dovecot counts it, written by Dovecot itself (quota_clone, as mailquota) after every change; mailbook only reads it.';
COMMENT ON COLUMN public.quota_usage.email IS 'The mailbox (the row goes with it).';
COMMENT ON COLUMN public.quota_usage.bytes IS 'Bytes stored.';
COMMENT ON COLUMN public.quota_usage.messages IS 'Messages stored.';
COMMENT ON COLUMN public.quota_usage.measured IS 'When Dovecot last wrote the row.';

-- measured: when Dovecot last wrote the row (it writes only the two counters)
CREATE FUNCTION public.quota_usage_measured() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.measured := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.quota_usage_measured() IS 'Trigger: stamps quota_usage.measured with the time of each write.';
CREATE TRIGGER quota_usage_measured BEFORE UPDATE ON public.quota_usage
    FOR EACH ROW EXECUTE FUNCTION public.quota_usage_measured();

-- the listing; usage is NULL until Dovecot has written the mailbox's row
CREATE VIEW public.mailboxes AS
SELECT u.email, u.domain, u.realname, u.maildir, u.quota_bytes, u.active, u.created, u.modified,
       u.disabled_services, u.quota_messages, q.bytes AS used_bytes, q.messages AS used_messages
  FROM public.users u LEFT JOIN public.quota_usage q ON q.email = u.email;
COMMENT ON VIEW public.mailboxes IS
'Every mailbox without its password hash, with Dovecot''s usage: what mailadmin reads (SELECT * FROM mailboxes).';
COMMENT ON COLUMN public.mailboxes.used_bytes IS 'Bytes stored, as Dovecot last wrote (NULL before its first write).';
COMMENT ON COLUMN public.mailboxes.used_messages IS 'Messages stored, as Dovecot last wrote.';

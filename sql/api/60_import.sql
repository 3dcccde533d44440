-- Bulk import, set-based: a few queries over the whole batch and one INSERT per table,
-- never a round trip per row. The rules are the API's own (*_error(), default_maildir(),
-- normalised_password_hash(), the tables' constraints), so a row the API would refuse is
-- refused here too.

-- set_aside_keys(target) -> the statements that put them back, or NULL
-- Caller: import_batch() only, for an initial load of users or aliases (granted to
-- nobody); it must run the statements before its transaction ends.
-- Locks the table against every other session, and only if it is still empty, drops its
-- primary key, unique constraints and other indexes, and the foreign keys that point at
-- it (send_as's, for users), and returns the statements that re-create each as it was
-- (keys, then indexes, then the foreign keys), read from the catalogue, so an index a
-- later migration adds is set aside too (its definition only: a comment on it, or a
-- CLUSTER mark, would not come back; the schema has none). PostgreSQL's own advice for
-- loading a table ("Populating a Database"): one sorted build per index after the rows
-- are in costs a fraction of the retail insertions (at 1,000,000 mailboxes, 2.0 s
-- against 8.3 s). The rebuilt keys check every row again; a duplicate fails the build.
--
-- Locks in remove_domain()'s order, domains first: every domain row FOR KEY SHARE, then
-- the table. Taken the other way round, a removal that locked its domain and then read
-- the table would wait for the load while the load's hosted-domain check waited for the
-- domain's row: a deadlock. Now a removal waits for the load and then finds its rows.
CREATE FUNCTION public.set_aside_keys(target regclass) RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    restore  text[];
    drops    text[];
    drop_it  text;
    occupied boolean;
BEGIN
    IF target NOT IN ('public.users'::regclass, 'public.aliases'::regclass) THEN
        RAISE EXCEPTION 'only users and aliases are loaded this way, not %', target USING ERRCODE = '22023';
    END IF;
    PERFORM FROM public.transports t ORDER BY t.domain FOR KEY SHARE;
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', target);
    EXECUTE format('SELECT EXISTS (SELECT FROM %s)', target) INTO occupied;
    IF occupied THEN  -- a session added a row first: row by row, then
        RETURN NULL;
    END IF;
    -- each object with the statement that re-creates it and the one that drops it:
    -- re-created keys first, then indexes, then the foreign keys that need the keys;
    -- dropped the other way round
    SELECT array_agg(k.create_it ORDER BY k.pass, k.name), array_agg(k.drop_it ORDER BY k.pass DESC, k.name)
      INTO restore, drops
      FROM (SELECT 1 AS pass, c.conname AS name,
                   format('ALTER TABLE %s ADD CONSTRAINT %I %s', target, c.conname, pg_get_constraintdef(c.oid)) AS create_it,
                   format('ALTER TABLE %s DROP CONSTRAINT %I', target, c.conname) AS drop_it
              FROM pg_constraint c WHERE c.conrelid = target AND c.contype IN ('p', 'u', 'x')
            UNION ALL
            SELECT 2, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
                   format('DROP INDEX %s', i.indexrelid::regclass)
              FROM pg_index i
             WHERE i.indrelid = target
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
            UNION ALL
            SELECT 3, c.conname,
                   format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)),
                   format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname)
              FROM pg_constraint c WHERE c.confrelid = target AND c.contype = 'f') k;
    FOREACH drop_it IN ARRAY coalesce(drops, '{}') LOOP
        EXECUTE drop_it;
    END LOOP;
    RETURN coalesce(restore, '{}');
END
$$;
REVOKE ALL ON FUNCTION public.set_aside_keys(regclass) FROM PUBLIC;

-- import_batch(dry_run) -> table(line, problem)
-- Caller: members of mailadmin, and of maildomainadmin (35_scopes.sql) (runner: `mailbook
-- import`), after COPYing the CSV into import_staging in the same transaction (the rows'
-- batch is that transaction). For a customer's admin, every domain a row names must be
-- one it manages (a row's address's domain, a domain row's name and target, a sendas
-- row's login's too; an alias's destination may be anywhere, as in add_alias()): if any
-- is not, the whole file is refused with just those lines, each naming the domain as
-- require_domain_scope() does, before any other check (which could tell what another
-- customer's domain holds), and nothing is written.
-- Returns every problem, each with its CSV line; when there is any (or dry_run),
-- writes nothing. Otherwise adds the file's domains, then mailboxes (plaintext
-- passwords hashed at settings.bcrypt_cost), then aliases, then send-as grants (kind
-- sendas: address is what destination, a mailbox, may send as), then vacation replies
-- (kind vacation: address is the mailbox; subject, body, starts, ends, days as
-- set_vacation() takes them, starts default now, days default 7; a mailbox that has a
-- reply already is refused, not overwritten). The batch's staging rows
-- are deleted either way. A row that a concurrent session adds first makes the whole
-- import fail (that row reported, or 23505), never half of it.
--
-- Why three steps: the tables' own constraints already hold every row to the API's
-- rules, so a clean file is checked once, while it is written (step 2). Only the rules
-- no constraint can express are checked beforehand (step 1), and the full, per-line
-- explanation (step 3) runs only for a dry run or when a constraint refused the batch.
-- Checking every row twice cost more than the write itself on a 200,000-row file.
--
-- An initial load (users empty, at least 10,000 mailboxes in the file; or aliases
-- empty, at least 10,000 alias rows) locks that table against every other session
-- until it commits, sets its keys and indexes aside and builds them once the rows are
-- in (set_aside_keys()): at 1,000,000 mailboxes the import takes about a third less
-- time. Nothing is skipped; the rebuilt keys check every row. A smaller file, or one
-- added to a populated table, goes in row by row, and Postfix and Dovecot keep reading
-- meanwhile.
--
-- JIT is off for it: the explanation query's estimate (one CASE per rule and row) passes
-- every JIT threshold, and compiling its 255 expressions took 15.9 s of a 10,000-row file
-- with one unhosted domain, whose check itself took 0.2 s (PostgreSQL 15, 2 cores).
CREATE FUNCTION public.import_batch(dry_run boolean DEFAULT false)
RETURNS TABLE (line integer, problem text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    this_batch  xid8 := pg_current_xact_id();  -- the staged rows of this transaction
    n_domains   bigint;  -- how many rows of each kind the file has
    n_mailboxes bigint;
    n_aliases   bigint;
    n_sendas    bigint;
    n_vacations bigint;
    suspects    bigint[];  -- rows that may break a rule of step 1
    seqs        bigint[];  -- step 1's problems: staged rows and messages
    messages    text[];
    restore     text[];  -- an initial load's keys and indexes, to re-create
    stmt        text;
    cost        integer;
    n           integer;
    failed      text;  -- SQLSTATE of the write that a constraint refused, if any
    failed_msg  text;
BEGIN
    -- The staged rows arrived in this transaction: without statistics the planner takes
    -- a 10,000-row batch for a handful and joins it row by row (3 s instead of 0.3 s).
    -- ANALYZE is quick (a sample) and sees our own rows; it also makes two imports at
    -- the same moment run one after the other, which is what an admin would want.
    -- It never samples password or password_hash (statistics target 0, migration 0028):
    -- pg_statistic is WAL-logged, and a plaintext there would reach replicas and backups.
    ANALYZE public.import_staging;
    -- Memory for this transaction's sorts, hashes and index builds (the nested-maildir
    -- check sorts every maildir; an initial load rebuilds the keys): with the defaults
    -- (4 MB, 64 MB) they spilled to disk at 1,000,000 mailboxes (issue 35). Local to the
    -- transaction, which ends with the import; a server given more keeps its own.
    IF pg_catalog.pg_size_bytes(pg_catalog.current_setting('work_mem')) < 64 * 1024 * 1024 THEN
        PERFORM pg_catalog.set_config('work_mem', '64MB', true);
    END IF;
    IF pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem')) < 256 * 1024 * 1024 THEN
        PERFORM pg_catalog.set_config('maintenance_work_mem', '256MB', true);
    END IF;

    -- 0. a customer's admin: the rows' domains must be its own (see above)
    IF public.is_scoped_admin() THEN
        RETURN QUERY
        WITH mine AS MATERIALIZED (SELECT public.managed_domains() AS domain),
        outside AS (
            SELECT r.seq, d.domain
              FROM public.import_rows r
             CROSS JOIN LATERAL (VALUES (CASE WHEN r.kind = 'domain' THEN r.address ELSE split_part(r.address, '@', 2) END),
                                        (CASE WHEN r.kind = 'domain' THEN r.destination
                                              WHEN r.kind = 'sendas' THEN split_part(r.destination, '@', 2) END))
                   AS d (domain)
             WHERE r.batch = this_batch AND d.domain <> '' AND d.domain NOT IN (SELECT m.domain FROM mine m)
        ),
        refused AS (
            SELECT o.seq, format('admin %s may not manage domain %s', public.quoted(session_user),
                                 public.quoted(o.domain)) AS message
              FROM outside o
            UNION ALL
            -- a maildir the file gives must lie below its own domain's directory, as
            -- new_mailbox() has it (40_mailboxes.sql): never in another customer's tree
            SELECT r.seq, public.maildir_scope_error(r.address, r.maildir)
              FROM public.import_rows r
             WHERE r.batch = this_batch AND r.kind = 'mailbox' AND r.maildir IS NOT NULL
               AND public.maildir_scope_error(r.address, r.maildir) IS NOT NULL
        )
        SELECT l.line, f.message
          FROM refused f JOIN public.import_lines l ON l.batch = this_batch AND l.seq = f.seq;
        IF FOUND THEN
            DELETE FROM public.import_staging;  -- as below: no batch outlives its transaction
            RETURN;
        END IF;
    END IF;

    -- 1. one pass over the batch: how many rows of each kind (a kind the file lacks costs
    -- no pass below), and which rows may break a rule that no table constraint checks:
    -- the row's kind and flags, the choice of password or hash, plaintext passwords. The
    -- test is a cheap superset of those rules (any plaintext password makes a suspect);
    -- their messages are worked out below for the suspects only. Building every row's
    -- messages took 2.1 s of a 1,000,000-row import, this pass about 0.9 s.
    SELECT count(*) FILTER (WHERE r.kind = 'domain'), count(*) FILTER (WHERE r.kind = 'mailbox'),
           count(*) FILTER (WHERE r.kind = 'alias'), count(*) FILTER (WHERE r.kind = 'sendas'),
           count(*) FILTER (WHERE r.kind = 'vacation'),
           array_agg(r.seq) FILTER (WHERE r.kind IS NULL OR r.kind NOT IN ('domain', 'mailbox', 'alias', 'sendas', 'vacation')
                                       OR r.active NOT IN ('true', 'false', 't', 'f', 'yes', 'no', '1', '0')
                                       OR (r.kind = 'mailbox' AND (r.password IS NOT NULL OR r.password_hash IS NULL))
                                       OR (r.kind IN ('alias', 'sendas') AND r.destination IS NULL))
      INTO n_domains, n_mailboxes, n_aliases, n_sendas, n_vacations, suspects
      FROM public.import_rows r
     WHERE r.batch = this_batch;

    -- the suspects' messages, and alias destinations in domains delivered here (as add_alias(); read only if the
    -- file has aliases; each pass reads import_rows afresh: a CTE of whole rows would be
    -- written out to disk first; only the file's addresses are kept, for the alias rule)
    WITH file_addresses AS MATERIALIZED (
        SELECT f.address FROM public.import_rows f WHERE f.batch = this_batch AND f.kind IN ('mailbox', 'alias')
    ),
    own AS (
        -- each rule yields a message or NULL
        SELECT r.seq, array_remove(ARRAY[
            CASE WHEN r.kind IS NULL OR r.kind NOT IN ('domain', 'mailbox', 'alias', 'sendas', 'vacation')
                 THEN format('kind must be domain, mailbox, alias, sendas or vacation, not %s', public.quoted(r.kind)) END,
            CASE WHEN r.active NOT IN ('true', 'false', 't', 'f', 'yes', 'no', '1', '0')
                 THEN format('active must be true or false, not %s', public.quoted(r.active)) END,
            CASE WHEN r.kind = 'mailbox' AND r.password IS NULL AND r.password_hash IS NULL
                 THEN 'a mailbox needs a password or a password_hash'
                 WHEN r.kind = 'mailbox' AND r.password IS NOT NULL AND r.password_hash IS NOT NULL
                 THEN 'give a password or a password_hash, not both' END,
            CASE WHEN r.kind = 'mailbox' AND r.password IS NOT NULL THEN public.password_error(r.password) END,
            CASE WHEN r.kind = 'alias' AND r.destination IS NULL THEN 'an alias needs a destination' END,
            CASE WHEN r.kind = 'sendas' AND r.destination IS NULL
                 THEN 'a sendas row needs the mailbox that may send as its address in destination' END
        ], NULL) AS problems
          FROM public.import_rows r
          JOIN unnest(suspects) AS suspect (seq) ON suspect.seq = r.seq
         WHERE r.batch = this_batch
    ),
    found (seq, problem) AS (
        SELECT own.seq, unnest(own.problems) FROM own
        UNION ALL
        SELECT r.seq, format('destination %s is in a domain hosted here but is no mailbox or alias', public.quoted(r.destination))
          FROM public.import_rows r
         WHERE n_aliases > 0 AND r.batch = this_batch AND r.kind = 'alias'
           AND split_part(r.destination, '@', 2) IN (  -- delivered here; a relay domain's next hop knows its own
                   SELECT t.domain FROM public.transports t WHERE NOT public.is_relay_transport(t.transport)
                   UNION SELECT d.address FROM public.import_rows d
                          WHERE d.batch = this_batch AND d.kind = 'domain' AND NOT public.is_relay_transport(d.transport))
           AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = r.destination)
           AND NOT EXISTS (SELECT FROM public.aliases a WHERE a.alias = r.destination)
           AND NOT EXISTS (SELECT FROM file_addresses f WHERE f.address = r.destination)
    )
    SELECT array_agg(found.seq), array_agg(found.problem) INTO seqs, messages FROM found;
    n := coalesce(cardinality(seqs), 0);
    IF n > 0 THEN  -- line numbers are counted only when there is something to report
        RETURN QUERY
        SELECT l.line, m.problem
          FROM unnest(seqs, messages) AS m (seq, problem)
          JOIN public.import_lines l ON l.batch = this_batch AND l.seq = m.seq;
    END IF;

    -- 2. write, the constraints checking every other rule row by row as it goes in
    IF n = 0 AND NOT coalesce(dry_run, false) THEN
        BEGIN
            SELECT s.bcrypt_cost INTO STRICT cost FROM public.settings s;
            -- a domain row with a destination is an alias domain of that domain
            IF n_domains > 0 THEN
                INSERT INTO public.transports (domain, transport, gid, active, alias_of, disabled_services,
                                               max_mailboxes, max_aliases, max_quota_bytes)
                SELECT r.address, r.transport, r.gid::integer, coalesce(r.active NOT IN ('false', 'f', 'no', '0'), true),
                       r.destination, r.services_off, r.max_mailboxes::integer, r.max_aliases::integer,
                       r.max_quota_bytes::bigint
                  FROM public.import_rows r WHERE r.batch = this_batch AND r.kind = 'domain';
            END IF;
            IF n_mailboxes >= 10000 AND NOT EXISTS (SELECT FROM public.users) THEN
                restore := public.set_aside_keys('public.users');  -- NULL if a mailbox came first
            END IF;
            IF n_mailboxes > 0 THEN
                INSERT INTO public.users (email, password, realname, maildir, quota_bytes, active, quota_messages,
                                          disabled_services)
                SELECT r.address,
                       coalesce(r.password_hash, '{BLF-CRYPT}' || crypto.crypt(r.password, crypto.gen_salt('bf', cost))),
                       r.realname, r.maildir, r.quota_bytes::bigint, coalesce(r.active NOT IN ('false', 'f', 'no', '0'), true),
                       r.quota_messages::bigint, r.services_off
                  FROM public.import_rows r WHERE r.batch = this_batch AND r.kind = 'mailbox';
            END IF;
            FOREACH stmt IN ARRAY coalesce(restore, '{}') LOOP
                EXECUTE stmt;
            END LOOP;
            restore := NULL;
            IF n_aliases >= 10000 AND NOT EXISTS (SELECT FROM public.aliases) THEN
                restore := public.set_aside_keys('public.aliases');
            END IF;
            IF n_aliases > 0 THEN
                INSERT INTO public.aliases (alias, email, active)
                SELECT r.address, r.destination, coalesce(r.active NOT IN ('false', 'f', 'no', '0'), true)
                  FROM public.import_rows r WHERE r.batch = this_batch AND r.kind = 'alias';
            END IF;
            FOREACH stmt IN ARRAY coalesce(restore, '{}') LOOP
                EXECUTE stmt;
            END LOOP;
            IF n_sendas > 0 THEN
                INSERT INTO public.send_as (login, address)
                SELECT r.destination, r.address
                  FROM public.import_rows r WHERE r.batch = this_batch AND r.kind = 'sendas';
            END IF;
            -- the table's constraints check subject, body, days and the dates; the
            -- casts raise data exceptions (22xxx), explained in step 3 like the rest
            IF n_vacations > 0 THEN
                INSERT INTO public.vacations (email, subject, body, starts, ends, days)
                SELECT r.address, r.subject, r.body, coalesce(public.vacation_time(r.starts), now()),
                       public.vacation_time(r.ends), coalesce(r.days::integer, 7)
                  FROM public.import_rows r WHERE r.batch = this_batch AND r.kind = 'vacation';
            END IF;
            DELETE FROM public.import_staging;  -- ours, and any a transaction left (below)
            RETURN;
        EXCEPTION WHEN integrity_constraint_violation OR data_exception THEN
            -- everything written above is rolled back with this block; explain it below
            GET STACKED DIAGNOSTICS failed = RETURNED_SQLSTATE, failed_msg = MESSAGE_TEXT;
        END;
    END IF;

    -- 3. every row a constraint refuses (or would, on a dry run), with its line
    RETURN QUERY
    WITH r AS (SELECT x.*, l.line,
                      CASE WHEN x.kind IN ('mailbox', 'sendas', 'vacation') THEN public.address_error(x.address)
                           WHEN x.kind = 'alias' THEN public.alias_error(x.address) END  -- "@domain": catch-all
                          AS address_problem
                 FROM public.import_rows x
                 JOIN public.import_lines l ON l.batch = x.batch AND l.seq = x.seq
                WHERE x.batch = this_batch),
    hosted AS (SELECT t.domain FROM public.transports t
               UNION SELECT r.address FROM r WHERE r.kind = 'domain'),
    -- each row's own values, in one pass: each CASE yields a message or NULL, and
    -- unnest() turns the row's array into lines
    own AS (
        SELECT r.line, unnest(ARRAY[
            -- domains
            CASE WHEN r.kind = 'domain' THEN public.domain_name_error(r.address) END,
            CASE WHEN r.kind = 'domain' THEN public.transport_error(r.transport) END,
            CASE WHEN r.kind = 'domain' AND r.gid IS NOT NULL AND (r.gid !~ '^[0-9]{1,9}$' OR r.gid::integer = 0)
                 THEN format('gid must be a positive group id, not %s', public.quoted(r.gid)) END,
            -- alias domains: the target must be a hosted domain (not an alias), here or in the file
            CASE WHEN r.kind = 'domain' AND r.destination IS NOT NULL THEN public.domain_name_error(r.destination) END,
            CASE WHEN r.kind = 'domain' AND r.destination IS NOT NULL
                      AND NOT EXISTS (SELECT FROM public.transports t WHERE t.domain = r.destination AND t.alias_of IS NULL)
                      AND NOT EXISTS (SELECT FROM public.import_rows d WHERE d.batch = this_batch AND d.kind = 'domain'
                                         AND d.address = r.destination AND d.destination IS NULL)
                 THEN format('alias domain %s needs %s to be a hosted domain; add a domain row for it',
                             public.quoted(r.address), public.quoted(r.destination)) END,
            -- mailboxes and aliases
            CASE WHEN r.kind IN ('mailbox', 'alias') THEN r.address_problem END,
            -- a maildir the file gave; a default one only for a valid address (a bad
            -- address is reported once, never again as a directory nobody typed)
            CASE WHEN r.kind = 'mailbox' AND (r.address_problem IS NULL
                      OR r.maildir IS DISTINCT FROM lower(public.default_maildir(r.address)))
                 THEN public.maildir_error(r.maildir) END,
            CASE WHEN r.kind = 'mailbox' THEN public.realname_error(r.realname) END,
            CASE WHEN r.kind = 'mailbox' AND r.password_hash IS NOT NULL
                 THEN public.password_hash_error(r.password_hash) END,
            CASE WHEN r.kind = 'mailbox' AND r.quota_bytes IS NOT NULL
                      AND (r.quota_bytes !~ '^[0-9]{1,18}$' OR r.quota_bytes::bigint = 0)
                 THEN format('quota_bytes must be a positive number of bytes, not %s', public.quoted(r.quota_bytes)) END,
            CASE WHEN r.kind = 'alias' AND r.destination IS NOT NULL THEN public.address_error(r.destination) END,
            CASE WHEN r.kind = 'mailbox' AND r.quota_messages IS NOT NULL
                      AND (r.quota_messages !~ '^[0-9]{1,18}$' OR r.quota_messages::bigint = 0)
                 THEN format('quota_messages must be a positive number, not %s', public.quoted(r.quota_messages)) END,
            -- services and caps (0019, 0020)
            CASE WHEN r.kind IN ('domain', 'mailbox') THEN public.service_list_error(r.services_off) END,
            CASE WHEN r.kind = 'domain' AND r.max_mailboxes IS NOT NULL AND r.max_mailboxes !~ '^[0-9]{1,9}$'
                 THEN format('max_mailboxes must be a number, 0 or more, not %s', public.quoted(r.max_mailboxes)) END,
            CASE WHEN r.kind = 'domain' AND r.max_aliases IS NOT NULL AND r.max_aliases !~ '^[0-9]{1,9}$'
                 THEN format('max_aliases must be a number, 0 or more, not %s', public.quoted(r.max_aliases)) END,
            CASE WHEN r.kind = 'domain' AND r.max_quota_bytes IS NOT NULL
                      AND (r.max_quota_bytes !~ '^[0-9]{1,18}$' OR r.max_quota_bytes::bigint = 0)
                 THEN format('max_quota_bytes must be a positive number of bytes, not %s', public.quoted(r.max_quota_bytes)) END,
            -- send-as grants: any valid address, for a mailbox stored here or in the file
            CASE WHEN r.kind = 'sendas' THEN r.address_problem END,
            CASE WHEN r.kind = 'sendas' AND r.destination IS NOT NULL THEN public.address_error(r.destination) END,
            CASE WHEN r.kind = 'sendas' AND public.address_error(r.destination) IS NULL
                      AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = r.destination)
                      AND NOT EXISTS (SELECT FROM public.import_rows m WHERE m.batch = this_batch AND m.kind = 'mailbox'
                                         AND m.address = r.destination)
                 THEN format('%s may send as %s only if it is a mailbox; add a mailbox row for it',
                             public.quoted(r.destination), public.quoted(r.address)) END,
            -- vacation replies (0061, 0062): set_vacation()'s rules, for a mailbox stored here or in the file
            CASE WHEN r.kind = 'vacation' THEN r.address_problem END,
            CASE WHEN r.kind = 'vacation' AND r.address_problem IS NULL
                      AND NOT EXISTS (SELECT FROM public.users u WHERE u.email = r.address)
                      AND NOT EXISTS (SELECT FROM public.import_rows m WHERE m.batch = this_batch AND m.kind = 'mailbox'
                                         AND m.address = r.address)
                 THEN format('a vacation reply needs the mailbox %s; add a mailbox row for it', public.quoted(r.address)) END,
            CASE WHEN r.kind = 'vacation' THEN public.vacation_text_error(r.subject, false) END,
            CASE WHEN r.kind = 'vacation' THEN public.vacation_text_error(r.body, true) END,
            CASE WHEN r.kind = 'vacation' THEN public.vacation_time_error(r.starts, 'starts') END,
            CASE WHEN r.kind = 'vacation' THEN public.vacation_time_error(r.ends, 'ends') END,
            CASE WHEN r.kind = 'vacation' AND r.days IS NOT NULL
                      AND (r.days !~ '^[0-9]{1,3}$' OR r.days::integer NOT BETWEEN 1 AND 365)
                 THEN format('days must be a number from 1 to 365, not %s', public.quoted(r.days)) END,
            CASE WHEN r.kind = 'vacation' AND r.ends IS NOT NULL
                      AND public.vacation_time_error(r.starts, 'starts') IS NULL
                      AND public.vacation_time_error(r.ends, 'ends') IS NULL
                      AND public.vacation_time(r.ends) <= coalesce(public.vacation_time(r.starts), now())
                 THEN format('a vacation must end after it starts, not %s before %s', public.quoted(r.ends),
                             coalesce(public.quoted(r.starts), 'now')) END
        ]) AS problem
          FROM r
    ),
    problems (line, problem) AS (
        SELECT own.line, own.problem FROM own WHERE own.problem IS NOT NULL
        -- against what is stored already
        UNION ALL
        SELECT r.line, format('domain %s is already hosted here', public.quoted(r.address))
          FROM r JOIN public.transports t ON t.domain = r.address WHERE r.kind = 'domain'
        UNION ALL
        SELECT r.line, format('mailbox %s already exists', public.quoted(r.address))
          FROM r JOIN public.users u ON u.email = r.address WHERE r.kind = 'mailbox'
        UNION ALL
        SELECT r.line, format('maildir %s is already used by mailbox %s', public.quoted(r.maildir), public.quoted(u.email))
          FROM r JOIN public.users u ON u.maildir = r.maildir WHERE r.kind = 'mailbox' AND u.email <> r.address
        -- maildirs apart (0026): none above or below a stored mailbox's, or another row's
        UNION ALL
        SELECT r.line, format('maildir %s %s the maildir %s of %s', public.quoted(r.maildir),
                              CASE WHEN a.maildir < r.maildir THEN 'lies inside' ELSE 'would contain' END,
                              public.quoted(a.maildir), public.quoted(a.email))
          FROM r CROSS JOIN LATERAL public.maildirs_around(r.maildir) a
         WHERE r.kind = 'mailbox'
        UNION ALL
        SELECT i.line, format('maildir %s lies inside the maildir %s on line %s', public.quoted(i.maildir),
                              public.quoted(o.maildir), o.line)
          FROM r i CROSS JOIN LATERAL public.maildir_parents(i.maildir) AS p(parent)
          JOIN r o ON o.kind = 'mailbox' AND o.maildir = p.parent
         WHERE i.kind = 'mailbox'
        UNION ALL
        SELECT r.line, format('alias %s already forwards to %s', public.quoted(r.address), public.quoted(r.destination))
          FROM r JOIN public.aliases a ON a.alias = r.address AND a.email = r.destination WHERE r.kind = 'alias'
        UNION ALL
        SELECT r.line, format('%s may already send as %s', public.quoted(r.destination), public.quoted(r.address))
          FROM r JOIN public.send_as g ON g.address = r.address AND g.login = r.destination WHERE r.kind = 'sendas'
        UNION ALL
        SELECT r.line, format('mailbox %s has a vacation reply already; clear it first (mailbook vacation clear)',
                              public.quoted(r.address))
          FROM r JOIN public.vacations v ON v.email = r.address WHERE r.kind = 'vacation'
        -- both: the domain must be hosted, here or earlier in the file; no repeats
        UNION ALL
        SELECT r.line, format('domain %s is not hosted here; add a domain row for it', public.quoted(split_part(r.address, '@', 2)))
          FROM r WHERE r.kind IN ('mailbox', 'alias') AND r.address_problem IS NULL
                   AND NOT EXISTS (SELECT FROM hosted h WHERE h.domain = split_part(r.address, '@', 2))
        UNION ALL
        SELECT r.line, format('domain %s is an alias domain; add %s in %s instead', public.quoted(a.domain),
                              public.quoted(r.address), public.quoted(a.target))
          FROM r JOIN (SELECT t.domain, t.alias_of AS target FROM public.transports t WHERE t.alias_of IS NOT NULL
                       UNION SELECT d.address, d.destination FROM r d WHERE d.kind = 'domain' AND d.destination IS NOT NULL) a
                 ON a.domain = split_part(r.address, '@', 2)
         WHERE r.kind IN ('mailbox', 'alias')
        UNION ALL
        SELECT d.line, format('%s %s appears more than once in the file (first on line %s)', d.kind, public.quoted(d.key), d.first)
          FROM (SELECT r.line, r.kind, concat_ws(' -> ', r.address, r.destination) AS key,
                       min(r.line) OVER w AS first
                  FROM r WHERE r.kind IN ('domain', 'mailbox', 'alias', 'sendas', 'vacation')
                WINDOW w AS (PARTITION BY r.kind, r.address, CASE WHEN r.kind IN ('alias', 'sendas') THEN r.destination END)) d
         WHERE d.line > d.first
        UNION ALL
        SELECT d.line, format('maildir %s appears more than once in the file (first on line %s)', public.quoted(d.maildir), d.first)
          FROM (SELECT r.line, r.maildir, min(r.line) OVER (PARTITION BY r.maildir) AS first
                  FROM r WHERE r.kind = 'mailbox') d
         WHERE d.line > d.first
    )
    SELECT p.line, p.problem FROM problems p;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 AND failed IS NOT NULL THEN
        -- a constraint refused the batch but no rule above names a row: a concurrent
        -- session got there first (23505), or a rule is missing here; say what failed
        RAISE EXCEPTION '%', failed_msg USING ERRCODE = failed;
    END IF;
    -- our rows, and any that a transaction committed without calling import_batch() (a
    -- hand-written INSERT): no batch may outlive its transaction. Another session's rows
    -- are invisible until it commits, and by then it has deleted them itself.
    DELETE FROM public.import_staging;
END
$$;
REVOKE ALL ON FUNCTION public.import_batch(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.import_batch(boolean) TO mailadmin, maildomainadmin;

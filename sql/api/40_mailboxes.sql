-- Mailboxes (table users). Addresses are lower-cased; maildirs keep their case.

-- Where a customer's admin may put a maildir. A global admin (mailadmin) may give any
-- safe maildir (maildir_error()), as before: moving users from another server's layout
-- needs it. A scoped admin (35_scopes.sql) may place a mailbox's maildir only below the
-- directory of the mailbox's own domain, as mailbook lays them out (default_maildir():
-- domain/local/): 'example.org/newbox/' from example.com's admin would sit in another
-- customer's directory (its listing, its backups, its purge), and 'example.org/' would
-- block that customer's every future mailbox (nested maildirs are refused, 0106). The
-- domain directory itself is refused too (it would hold the domain's other maildirs).
-- Exact bytes, no case folding: 'EXAMPLE.COM/x/' is another directory on disk. A
-- maildir below its own domain cannot reach out of it: maildir_error() refuses "..",
-- "." and empty segments, and only root can make a symlink in the mail base.

-- maildir_scope_error(address, maildir) -> text
-- Caller: require_maildir_scope() and any path that writes users rows for a login (the
-- import's checks). NULL when the login may use that maildir for that (lower-cased)
-- address; else why not, naming the maildir, the address, the directory and the login.
-- Runs as mailowner (it reads the login's scope).
CREATE FUNCTION public.maildir_scope_error(address text, maildir text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    home constant text := split_part(maildir_scope_error.address, '@', 2) || '/';
BEGIN
    IF NOT public.is_scoped_admin()
       OR (pg_catalog.starts_with(maildir_scope_error.maildir, home) AND maildir_scope_error.maildir <> home) THEN
        RETURN NULL;
    END IF;
    RETURN format('maildir %s of %s lies outside its domain''s directory %s: admin %s may only place maildirs below it',
                  public.quoted(maildir_scope_error.maildir), public.quoted(maildir_scope_error.address),
                  public.quoted(home), public.quoted(session_user));
END
$$;
REVOKE ALL ON FUNCTION public.maildir_scope_error(text, text) FROM PUBLIC;

-- require_maildir_scope(address, maildir) -> void
-- Caller: new_mailbox() (so add_mailbox and add_mailbox_hashed), after the maildir's
-- shape is checked. Raises 42501 (insufficient_privilege) with maildir_scope_error()'s
-- message when a scoped admin places a maildir outside its mailbox's domain directory.
CREATE FUNCTION public.require_maildir_scope(address text, maildir text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    problem constant text := public.maildir_scope_error(address, maildir);
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = '42501',
              HINT = format('leave the maildir out for the default %s',
                            public.quoted(public.default_maildir(require_maildir_scope.address)));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.require_maildir_scope(text, text) FROM PUBLIC;

-- new_mailbox(email, realname, maildir, quota_bytes) -> (address, dir)
-- Caller: the API (add_mailbox, add_mailbox_hashed), and `mailbook mailbox add` before it
-- asks for a password (nothing is written). Validates a mailbox that is about
-- to be added, cheapest checks first and before any bcrypt work, and returns the
-- normalised address and the maildir (default_maildir() when not given).
-- Raises 22004/22023 for invalid input, 23503 for an unhosted domain, 23505 for a
-- duplicate address or maildir, or the address of a mailbox removed with a grace period
-- (0214; its maildir's rules are the trigger's, at the insert), 42501 for a domain (require_domain_scope()) or a maildir
-- (require_maildir_scope()) outside a scoped admin's reach.
CREATE FUNCTION public.new_mailbox(p_email text, p_realname text, p_maildir text,
                                   p_quota_bytes bigint, OUT address text, OUT dir text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    address := lower(p_email);
    PERFORM public.assert_valid(public.address_error(address));
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    dir := coalesce(p_maildir, public.default_maildir(address));
    PERFORM public.assert_valid(public.maildir_error(dir));
    PERFORM public.require_maildir_scope(address, dir);
    PERFORM public.assert_valid(public.realname_error(p_realname));
    IF p_quota_bytes <= 0 THEN
        RAISE EXCEPTION 'quota_bytes must be positive (NULL for no quota), not %', p_quota_bytes
              USING ERRCODE = '22023';
    END IF;
    PERFORM public.assert_hosted(split_part(address, '@', 2));
    IF EXISTS (SELECT FROM public.users u WHERE u.email = address) THEN
        RAISE EXCEPTION 'mailbox % already exists', public.quoted(address) USING ERRCODE = '23505';
    END IF;
    -- 0214's; a separate IF: the call is not even planned on a database without it (the
    -- API is re-created before the migrations run on an old-chain database)
    IF to_regprocedure('public.removed_address_error(text)') IS NOT NULL THEN
        IF public.removed_address_error(address) IS NOT NULL THEN
            RAISE EXCEPTION '%', public.removed_address_error(address) USING ERRCODE = '23505',
                  HINT = format('mailbook mailbox restore %s', address);
        END IF;
    END IF;
    IF EXISTS (SELECT FROM public.users u WHERE u.maildir = dir) THEN
        RAISE EXCEPTION 'maildir % is already used by mailbox %', public.quoted(dir),
              public.quoted((SELECT u.email FROM public.users u WHERE u.maildir = dir))
              USING ERRCODE = '23505';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.new_mailbox(text, text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.new_mailbox(text, text, text, bigint) TO mailadmin, maildomainadmin;

-- existing_mailbox(email) -> text
-- Caller: `mailbook mailbox passwd`, before it asks for a password. The address as
-- stored (lower case); raises P0002 when there is no such mailbox, as set_password does.
CREATE FUNCTION public.existing_mailbox(email text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(existing_mailbox.email);
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    IF NOT EXISTS (SELECT FROM public.users u WHERE u.email = address) THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    RETURN address;
END
$$;
REVOKE ALL ON FUNCTION public.existing_mailbox(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.existing_mailbox(text) TO mailadmin, maildomainadmin;

-- my_mailbox(email) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox quota`). One row of the mailboxes view (never a hash) for
-- an address, for a customer's admin who may not read the view itself. Raises 42501
-- for a domain outside a scoped admin's reach, P0002 when there is no such mailbox.
CREATE FUNCTION public.my_mailbox(email text) RETURNS public.mailboxes
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address constant text := lower(my_mailbox.email);
    result  public.mailboxes;
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    SELECT * INTO result FROM public.mailboxes m WHERE m.email = address;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.my_mailbox(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.my_mailbox(text) TO mailadmin, maildomainadmin;

-- stale_mailboxes(days) -> SETOF mailboxes
-- Caller: members of mailadmin (every mailbox) and of maildomainadmin (its domains, as
-- my_mailboxes()) (runner: `mailbook mailbox stale`). The mailboxes nobody has logged in
-- to for days days, or ever since Dovecot began recording (last_login NULL: a mailbox
-- that only receives mail, or one recorded before migration 0210), those never first.
-- Raises 22023 for days below 1 or NULL.
CREATE FUNCTION public.stale_mailboxes(days integer) RETURNS SETOF public.mailboxes
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF days IS NULL OR days < 1 THEN
        RAISE EXCEPTION 'days must be a whole number of days, 1 or more, not %', coalesce(days::text, 'NULL')
              USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
        SELECT m.* FROM public.my_mailboxes() m
         WHERE m.last_login IS NULL OR m.last_login < now() - make_interval(days => days)
         ORDER BY m.last_login NULLS FIRST, m.email;
END
$$;
REVOKE ALL ON FUNCTION public.stale_mailboxes(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.stale_mailboxes(integer) TO mailadmin, maildomainadmin;

-- insert_mailbox(address, hash, realname, dir, quota_bytes) -> mailboxes
-- Caller: the API, after new_mailbox(). A concurrent insert of the same address or
-- maildir can still win the race; its unique violation is reported as clearly.
CREATE FUNCTION public.insert_mailbox(p_address text, p_hash text, p_realname text,
                                      p_dir text, p_quota_bytes bigint)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result public.mailboxes;
    violated text;
BEGIN
    INSERT INTO public.users (email, password, realname, maildir, quota_bytes)
    VALUES (p_address, p_hash, p_realname, p_dir, p_quota_bytes);
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = p_address;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
    IF violated = '' THEN  -- a trigger's own message (a removed mailbox's address or maildir, 0214)
        RAISE;
    END IF;
    RAISE EXCEPTION 'mailbox % or its maildir % already exists', public.quoted(p_address),
          public.quoted(p_dir) USING ERRCODE = '23505';
END
$$;
REVOKE ALL ON FUNCTION public.insert_mailbox(text, text, text, text, bigint) FROM PUBLIC;

-- add_mailbox(email, password, realname, maildir, quota_bytes) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook mailbox add`). Runs as mailowner.
-- Hashes with pgcrypto bcrypt at settings.bcrypt_cost, stored as {BLF-CRYPT}$2a$...
-- Raises 22004/22023 for invalid input (address, maildir, password), 23503 if the
-- domain is not hosted, 23505 if the address or maildir exists.
CREATE FUNCTION public.add_mailbox(email text, password text, realname text DEFAULT NULL,
                                   maildir text DEFAULT NULL, quota_bytes bigint DEFAULT NULL)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m record := public.new_mailbox(email, realname, maildir, quota_bytes);
BEGIN
    RETURN public.insert_mailbox(m.address, public.hash_password(password), realname, m.dir, quota_bytes);
END
$$;
REVOKE ALL ON FUNCTION public.add_mailbox(text, text, text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_mailbox(text, text, text, text, bigint) TO mailadmin, maildomainadmin;

-- add_mailbox_hashed(email, password_hash, realname, maildir, quota_bytes) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook mailbox add --hashed`, `mailbook
-- import`), to move users from another server without knowing their passwords, e.g.
-- `doveadm pw` output {BLF-CRYPT}$2y$... or {SHA512-CRYPT}$6$...; bare crypt strings get
-- their {SCHEME}. A plaintext is refused (22023), never stored as if it were a hash.
-- Otherwise raises as add_mailbox.
CREATE FUNCTION public.add_mailbox_hashed(email text, password_hash text, realname text DEFAULT NULL,
                                          maildir text DEFAULT NULL, quota_bytes bigint DEFAULT NULL)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m record := public.new_mailbox(email, realname, maildir, quota_bytes);
BEGIN
    RETURN public.insert_mailbox(m.address, public.normalise_password_hash(password_hash),
                                 realname, m.dir, quota_bytes);
END
$$;
REVOKE ALL ON FUNCTION public.add_mailbox_hashed(text, text, text, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.add_mailbox_hashed(text, text, text, text, bigint) TO mailadmin, maildomainadmin;

-- set_password(email, password) -> void
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook mailbox passwd`). Re-hashes at the
-- current bcrypt cost, and ends a change_password() lockout (the help desk's way out for
-- a user who mistyped too often). Holds password_error()'s rules, not the self-service
-- policy (password_policy_error() checks that). Raises P0002 for an unknown mailbox,
-- 22004/22023 as add_mailbox.
CREATE FUNCTION public.set_password(email text, password text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(set_password.email);
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    PERFORM FROM public.users u WHERE u.email = address FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    UPDATE public.users u
       SET password = public.hash_password(set_password.password), modified = now()
     WHERE u.email = address;
    -- ends the mailbox's count of wrong guesses; a row a running check holds is skipped
    -- (an idle session must not hold up a reset)
    DELETE FROM public.password_attempts a
     WHERE a.id IN (SELECT o.id FROM public.password_attempts o WHERE o.email = address FOR UPDATE SKIP LOCKED);
END
$$;
REVOKE ALL ON FUNCTION public.set_password(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_password(text, text) TO mailadmin, maildomainadmin;

-- Removing a mailbox: at once (keep_days 0, the default), or with a grace period
-- (migration 0214): the row leaves users (no lookup sees it, mail to it gets 550), and
-- what restore_mailbox() brings back is kept in removed_mailboxes: the users row as it was
-- (password hash, realname, maildir, quotas, active, disabled services, created, and any
-- column added later), its vacation, send-as grants (as login), app passwords, last logins,
-- Dovecot's usage counts, its former addresses (0216, if renamed within 5 days), and the
-- alias rows that forwarded to it. Its maildir stays on
-- disk and out of the purge queue until the window ends (expire_removed_mailboxes(),
-- 80_maildirs.sql). Not kept: password_attempts (a lockout does not outlive a removal),
-- the send-as grants others hold to send as it (they never went: no foreign key).

-- remove_mailbox(email, keep_days) -> void
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner:
-- `mailbook mailbox remove [--keep-days N]`). Also removes the alias rows that forwarded
-- to it (they would bounce), in any domain: a forward another customer pointed at it too.
-- keep_days 0 (what remove_mailbox(email) does, as before 0214): gone for good, its
-- maildir queued for purging. keep_days 1..3650: restorable with restore_mailbox() for
-- that many days (see above); its address and maildir are not reusable meanwhile.
-- The maildir on disk is left alone either way. Raises P0002 for an unknown mailbox,
-- 22023 for keep_days NULL, negative or above 3650.
CREATE FUNCTION public.remove_mailbox(email text, keep_days integer) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target    text := lower(remove_mailbox.email);
    box       public.users;
    until     timestamptz;
    n_aliases bigint;
BEGIN
    PERFORM public.require_domain_scope(split_part(target, '@', 2));
    IF keep_days IS NULL OR keep_days < 0 OR keep_days > 3650 THEN
        RAISE EXCEPTION 'keep_days must be 0 (remove at once) to 3650 days, not %', coalesce(keep_days::text, 'NULL')
              USING ERRCODE = '22023';
    END IF;
    SELECT * INTO box FROM public.users u WHERE u.email = target FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(target) USING ERRCODE = 'P0002';
    END IF;
    IF keep_days > 0 THEN
        until := now() + make_interval(days => keep_days);
        -- take turns with every writer of maildirs under the same first segment (0106)
        INSERT INTO public.maildir_roots AS r (root) VALUES (split_part(box.maildir, '/', 1))
        ON CONFLICT (root) DO UPDATE SET root = excluded.root;
        INSERT INTO public.removed_mailboxes (email, maildir, purge_after, mailbox, kept)
        VALUES (target, box.maildir, until, to_jsonb(box), jsonb_build_object(
            'aliases', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM public.aliases a WHERE a.email = target),
            'send_as', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM public.send_as s WHERE s.login = target),
            'vacations', (SELECT coalesce(jsonb_agg(to_jsonb(v)), '[]') FROM public.vacations v WHERE v.email = target),
            'app_passwords', (SELECT coalesce(jsonb_agg(to_jsonb(p)), '[]') FROM public.app_passwords p WHERE p.email = target),
            'last_logins', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]') FROM public.last_logins l WHERE l.email = target),
            'quota_usage', (SELECT coalesce(jsonb_agg(to_jsonb(q)), '[]') FROM public.quota_usage q WHERE q.email = target),
            'former_addresses', (SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]') FROM public.former_addresses f
                                  WHERE f.email = target AND f.until > now())));
    END IF;
    DELETE FROM public.users u WHERE u.email = target;
    IF keep_days > 0 THEN
        -- queued by the delete's trigger (0108): held back until the window ends
        DELETE FROM public.maildir_purge_queue q WHERE q.maildir = box.maildir;
    END IF;
    DELETE FROM public.aliases a WHERE a.email = target;
    GET DIAGNOSTICS n_aliases = ROW_COUNT;
    IF n_aliases > 0 THEN
        RAISE NOTICE 'also removed % alias row(s) that forwarded to %', n_aliases, target;
    END IF;
    IF keep_days > 0 THEN
        RAISE NOTICE '% can be restored until %', target,
              to_char(until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"');
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.remove_mailbox(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remove_mailbox(text, integer) TO mailadmin, maildomainadmin;

-- remove_mailbox(email) -> void
-- Caller: as remove_mailbox(email, keep_days), whose keep_days 0 it is: removed at once,
-- its maildir queued for purging (the signature before 0214, kept for its callers and
-- grants). Raises as that.
CREATE FUNCTION public.remove_mailbox(email text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM public.remove_mailbox(remove_mailbox.email, 0);
END
$$;
REVOKE ALL ON FUNCTION public.remove_mailbox(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remove_mailbox(text) TO mailadmin, maildomainadmin;

-- insert_json_rows(tbl, rows) -> void
-- Caller: restore_mailbox() only (granted to nobody). Inserts rows (a jsonb array of
-- to_jsonb() rows of tbl) into tbl, the columns they name that tbl still has and may be
-- written (not generated); a column added since takes its default.
CREATE FUNCTION public.insert_json_rows(tbl regclass, rows jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cols text;
BEGIN
    IF rows IS NULL OR jsonb_typeof(rows) <> 'array' OR jsonb_array_length(rows) = 0 THEN
        RETURN;
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
       AND rows -> 0 ? a.attname;
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM jsonb_populate_recordset(NULL::%s, $1)', tbl, cols, cols, tbl)
      USING rows;
END
$$;
REVOKE ALL ON FUNCTION public.insert_json_rows(regclass, jsonb) FROM PUBLIC;

-- restore_mailbox(email) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql)
-- (runner: `mailbook mailbox restore`). Brings back a mailbox removed with a grace
-- period, within it, with what was kept (see above; its modified time is now); alias rows
-- of a domain no longer hosted, or that exist again, are skipped. Counts against the
-- domain's and the reseller's limits like a new mailbox (their triggers, 0105, 0208).
-- Raises P0002 when no such mailbox was removed with a grace period, 55000 when its window
-- has ended, 42501 outside a scoped admin's domains, 23503 if its domain is no longer
-- hosted, the limits' errors if a cap is full.
CREATE FUNCTION public.restore_mailbox(email text) RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address constant text := lower(restore_mailbox.email);
    r       record;
    result  public.mailboxes;
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    DELETE FROM public.removed_mailboxes x WHERE x.email = address RETURNING x.* INTO r;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no removed mailbox % can be restored', public.quoted(address) USING ERRCODE = 'P0002',
              HINT = 'mailbook mailbox removed lists the ones that can';
    END IF;
    IF r.purge_after <= now() THEN
        RAISE EXCEPTION 'the grace period of the removed mailbox % ended at %: its maildir % is due for purging',
              public.quoted(address), to_char(r.purge_after AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"'),
              public.quoted(r.maildir) USING ERRCODE = '55000';
    END IF;
    PERFORM public.insert_json_rows('public.users', jsonb_build_array(r.mailbox || jsonb_build_object('modified', now())));
    PERFORM public.insert_json_rows('public.quota_usage', r.kept -> 'quota_usage');
    PERFORM public.insert_json_rows('public.vacations', r.kept -> 'vacations');
    PERFORM public.insert_json_rows('public.send_as', (
        SELECT jsonb_agg(s) FROM jsonb_array_elements(r.kept -> 'send_as') s
         WHERE NOT EXISTS (SELECT FROM public.send_as o WHERE o.login = s ->> 'login' AND o.address = s ->> 'address')));
    PERFORM public.insert_json_rows('public.app_passwords', r.kept -> 'app_passwords');
    PERFORM public.insert_json_rows('public.last_logins', r.kept -> 'last_logins');
    PERFORM public.insert_json_rows('public.aliases', (
        SELECT jsonb_agg(a) FROM jsonb_array_elements(r.kept -> 'aliases') a
         WHERE EXISTS (SELECT FROM public.transports t WHERE t.domain = split_part(a ->> 'alias', '@', 2))
           AND NOT EXISTS (SELECT FROM public.aliases o WHERE o.alias = a ->> 'alias' AND o.email = a ->> 'email')));
    -- its former addresses (0216) still in their window, unless taken meanwhile
    PERFORM public.insert_json_rows('public.former_addresses', (
        SELECT jsonb_agg(f) FROM jsonb_array_elements(r.kept -> 'former_addresses') f
         WHERE (f ->> 'until')::timestamptz > now()
           AND NOT EXISTS (SELECT FROM public.users o WHERE o.email = f ->> 'address')
           AND NOT EXISTS (SELECT FROM public.aliases o WHERE o.alias = f ->> 'address' AND o.email <> address)
           AND NOT EXISTS (SELECT FROM public.former_addresses o WHERE o.address = f ->> 'address')));
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = address;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.restore_mailbox(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.restore_mailbox(text) TO mailadmin, maildomainadmin;

-- removed_mailboxes_list() -> table(email, realname, maildir, quota_bytes, removed,
--                                   removed_by, purge_after, restorable, aliases)
-- Caller: members of mailadmin (every one) and of maildomainadmin (its domains') (runner:
-- `mailbook mailbox removed`). The mailboxes removed with a grace period, soonest to end
-- first: restorable false once the window has ended (the next `mailbook maildirs purge`
-- queues its maildir). aliases: how many alias rows a restore brings back. Never a hash.
CREATE FUNCTION public.removed_mailboxes_list()
RETURNS TABLE (email text, realname text, maildir text, quota_bytes bigint, removed timestamptz,
               removed_by name, purge_after timestamptz, restorable boolean, aliases integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT r.email, r.mailbox ->> 'realname', r.maildir, (r.mailbox ->> 'quota_bytes')::bigint, r.removed,
               r.removed_by, r.purge_after, r.purge_after > now(), jsonb_array_length(coalesce(r.kept -> 'aliases', '[]'))
          FROM public.removed_mailboxes r
         WHERE NOT public.is_scoped_admin() OR r.domain IN (SELECT public.managed_domains())
         ORDER BY r.purge_after, r.email;
END
$$;
REVOKE ALL ON FUNCTION public.removed_mailboxes_list() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.removed_mailboxes_list() TO mailadmin, maildomainadmin;

-- set_mailbox_active(email, active) -> mailboxes
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook mailbox enable|disable`). An inactive
-- mailbox receives no mail (refused at RCPT) and cannot log in.
-- Raises P0002 for an unknown mailbox, 22004 for a NULL flag.
CREATE FUNCTION public.set_mailbox_active(email text, active boolean)
RETURNS public.mailboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address text := lower(set_mailbox_active.email);
    result  public.mailboxes;
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    IF set_mailbox_active.active IS NULL THEN
        RAISE EXCEPTION 'active must not be NULL' USING ERRCODE = '22004';
    END IF;
    UPDATE public.users u
       SET active = set_mailbox_active.active, modified = now()
     WHERE u.email = address;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = address;
    RETURN result;
END
$$;
REVOKE ALL ON FUNCTION public.set_mailbox_active(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.set_mailbox_active(text, boolean) TO mailadmin, maildomainadmin;

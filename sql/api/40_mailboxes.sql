-- Mailboxes (table users). Addresses are lower-cased; maildirs keep their case.

-- new_mailbox(email, realname, maildir, quota_bytes) -> (address, dir)
-- Caller: the API (add_mailbox, add_mailbox_hashed), and `mailbook mailbox add` before it
-- asks for a password (nothing is written). Validates a mailbox that is about
-- to be added, cheapest checks first and before any bcrypt work, and returns the
-- normalised address and the maildir (default_maildir() when not given).
-- Raises 22004/22023 for invalid input, 23503 for an unhosted domain, 23505 for a
-- duplicate address or maildir.
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
    PERFORM public.assert_valid(public.realname_error(p_realname));
    IF p_quota_bytes <= 0 THEN
        RAISE EXCEPTION 'quota_bytes must be positive (NULL for no quota), not %', p_quota_bytes
              USING ERRCODE = '22023';
    END IF;
    PERFORM public.assert_hosted(split_part(address, '@', 2));
    IF EXISTS (SELECT FROM public.users u WHERE u.email = address) THEN
        RAISE EXCEPTION 'mailbox % already exists', public.quoted(address) USING ERRCODE = '23505';
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
BEGIN
    INSERT INTO public.users (email, password, realname, maildir, quota_bytes)
    VALUES (p_address, p_hash, p_realname, p_dir, p_quota_bytes);
    SELECT * INTO STRICT result FROM public.mailboxes m WHERE m.email = p_address;
    RETURN result;
EXCEPTION WHEN unique_violation THEN
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

-- remove_mailbox(email) -> void
-- Caller: members of mailadmin, and of maildomainadmin in its scope (35_scopes.sql) (runner: `mailbook mailbox remove`). Also removes the
-- alias rows that forwarded to it (they would bounce), in any domain: a forward another
-- customer pointed at it too. The maildir on disk is left alone. Raises P0002 for an
-- unknown mailbox.
CREATE FUNCTION public.remove_mailbox(email text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    address   text := lower(remove_mailbox.email);
    n_aliases bigint;
BEGIN
    PERFORM public.require_domain_scope(split_part(address, '@', 2));
    DELETE FROM public.users u WHERE u.email = address;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mailbox % does not exist', public.quoted(address) USING ERRCODE = 'P0002';
    END IF;
    DELETE FROM public.aliases a WHERE a.email = address;
    GET DIAGNOSTICS n_aliases = ROW_COUNT;
    IF n_aliases > 0 THEN
        RAISE NOTICE 'also removed % alias row(s) that forwarded to %', n_aliases, address;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION public.remove_mailbox(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.remove_mailbox(text) TO mailadmin, maildomainadmin;

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

-- quota_usage: each mailbox's bytes and messages as Dovecot counts them, written by
-- Dovecot itself (the quota_clone plugin, through its dict proxy, as the role
-- mailquota) after every delivery, expunge and APPEND. mailbook only reads it: the
-- `mailboxes` view, `mailbook mailbox list` and `quota`, and `doctor` (over 90 %).
-- The row goes with its mailbox (ON DELETE CASCADE); Dovecot writes it again on the
-- mailbox's next change if it is missing. Dovecot's statement is
--   INSERT INTO quota_usage (bytes,messages,email) VALUES (…) ON CONFLICT (email)
--   DO UPDATE SET bytes=…,messages=…
-- so mailquota needs INSERT of those columns, UPDATE of the two counters and SELECT of
-- the key (PostgreSQL's rule for ON CONFLICT); sql/api/90_privileges.sql grants exactly that.
-- Needs the cluster role mailquota (sql/roles.sql): run `mailbook init` before upgrading.
-- depends: 0030_move_pgcrypto_out_of_public

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'mailquota') THEN
        RAISE EXCEPTION 'role mailquota does not exist'
              USING ERRCODE = '42704', HINT = 'run `mailbook init` (it adds missing roles, and changes nothing else) before `mailbook migrate apply`';
    END IF;
END
$$;

CREATE TABLE public.quota_usage (
    email    text PRIMARY KEY
             REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    bytes    bigint NOT NULL DEFAULT 0,
    messages bigint NOT NULL DEFAULT 0,
    measured timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.quota_usage IS
    'Each mailbox''s current usage as Dovecot counts it (quota_clone, as mailquota); read-only for everyone else';

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
CREATE TRIGGER quota_usage_measured BEFORE UPDATE ON public.quota_usage
    FOR EACH ROW EXECUTE FUNCTION public.quota_usage_measured();

-- like the other service roles (0001): it may connect and look into schema public
DO $db$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO mailquota', current_database());
END
$db$;
GRANT USAGE ON SCHEMA public TO mailquota;

-- the listing view shows usage next to the limits (new last columns; NULL until
-- Dovecot has written the mailbox's row)
CREATE OR REPLACE VIEW public.mailboxes AS
SELECT u.email, u.domain, u.realname, u.maildir, u.quota_bytes, u.active, u.created, u.modified,
       u.disabled_services, u.quota_messages, q.bytes AS used_bytes, q.messages AS used_messages
  FROM public.users u LEFT JOIN public.quota_usage q ON q.email = u.email;

-- send_as: explicit grants for smtpd_sender_login_maps. A mailbox may always send as
-- its own address and as the aliases that forward to it (postfix_sender_logins() in
-- sql/api/70_lookups.sql works those out); a row here lets one mailbox (login) also
-- send as one more address: a shared role address, a colleague's on leave, or an
-- address hosted elsewhere. Nothing else may send as anyone.
-- The grant goes with the mailbox (ON DELETE CASCADE); a removed mailbox leaves none.
-- depends: 0017_allow_catch_all_aliases

CREATE TABLE public.send_as (
    login   text NOT NULL
            REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    address text NOT NULL
            CONSTRAINT send_as_address_valid CHECK (public.address_error(address) IS NULL),
    created timestamptz NOT NULL DEFAULT now(),
    -- the lookup is by address (Postfix asks who owns the sender), so it leads
    PRIMARY KEY (address, login)
);
-- for the cascade from users and for listing one mailbox's grants
CREATE INDEX send_as_login_idx ON public.send_as (login);

COMMENT ON TABLE public.send_as IS
    'Extra envelope senders a mailbox (login) may use on submission, besides its own address and aliases';

-- the same audit as the other mail tables (0015): key "login -> address"
CREATE TRIGGER audit_insert AFTER INSERT ON public.send_as
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('login', 'address');
CREATE TRIGGER audit_delete AFTER DELETE ON public.send_as
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('login', 'address');
CREATE TRIGGER audit_update AFTER UPDATE ON public.send_as
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('login', 'address');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.send_as
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

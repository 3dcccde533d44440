-- aliases: virtual_alias_maps rows, one per (alias, destination), so an alias may fan
-- out to several destinations (the tutorial's PRIMARY KEY (alias) allowed only one).
-- The alias is in a hosted mailbox domain (0105's triggers: the tutorial's own example
-- row, an alias in the typo domain "exmaple.com", is refused); a destination may be
-- anywhere. "@example.com" is the domain's catch-all, Postfix's own notation (virtual(5))
-- as PostfixAdmin stores it: it receives mail for local parts that are neither a mailbox
-- nor an alias there (that rule lives in postfix-maps/virtual.cf's one query).
--
-- send_as: explicit grants for smtpd_sender_login_maps. A mailbox may always send as its
-- own address and as the aliases that forward to it (postfix_sender_logins() in
-- sql/api/70_lookups.sql works those out); a row here lets one mailbox (login) also send
-- as one more address: a shared role address, a colleague's on leave, or an address
-- hosted elsewhere. Nothing else may send as anyone. The grant goes with the mailbox.
-- depends: 0106_baseline_mailboxes

CREATE TABLE public.aliases (
    alias    text NOT NULL
             CONSTRAINT aliases_alias_valid CHECK (public.alias_error(alias) IS NULL),
    email    text NOT NULL
             CONSTRAINT aliases_destination_valid CHECK (public.address_error(email) IS NULL),
    domain   text NOT NULL GENERATED ALWAYS AS (split_part(alias, '@', 2)) STORED,
    active   boolean NOT NULL DEFAULT true,
    created  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alias, email)
);
COMMENT ON TABLE public.aliases IS
'One row per (alias, destination): mail to alias goes to each destination. "@domain" is the domain''s catch-all, for local parts that are neither a mailbox nor an alias. Change it with add_alias(), remove_alias().';
COMMENT ON COLUMN public.aliases.alias IS 'The alias address, lower case, or "@domain" for a catch-all; in a mailbox domain.';
COMMENT ON COLUMN public.aliases.email IS 'One destination: a mailbox or alias here, or any address elsewhere.';
COMMENT ON COLUMN public.aliases.domain IS 'The alias''s domain (a generated column).';
COMMENT ON COLUMN public.aliases.active IS 'false: this forward is ignored by the maps.';
COMMENT ON COLUMN public.aliases.created IS 'When the row was added.';

CREATE INDEX aliases_domain_idx ON public.aliases (domain);
-- who forwards to this address? (remove_mailbox, smtpd_sender_login_maps)
CREATE INDEX aliases_email_idx ON public.aliases (email);

CREATE TRIGGER aliases_domain_hosted AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER aliases_domain_hosted_on_update AFTER UPDATE ON public.aliases
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_unhosted_domains();
CREATE TRIGGER domain_limits_on_insert AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();
CREATE TRIGGER domain_limits_on_update AFTER UPDATE ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_over_domain_limits();

-- audit (0103): key "alias -> destination"
CREATE TRIGGER audit_insert AFTER INSERT ON public.aliases
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('alias', 'email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.aliases
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('alias', 'email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.aliases
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('alias', 'email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.aliases
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

CREATE TABLE public.send_as (
    login   text NOT NULL
            REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    address text NOT NULL
            CONSTRAINT send_as_address_valid CHECK (public.address_error(address) IS NULL),
    created timestamptz NOT NULL DEFAULT now(),
    -- the lookup is by address (Postfix asks who owns the sender), so it leads
    PRIMARY KEY (address, login)
);
COMMENT ON TABLE public.send_as IS
'Extra send-as grants for smtpd_sender_login_maps: login may also send as address. A mailbox may always send as itself and as the aliases that forward to it. Change it with allow_send_as(), disallow_send_as().';
COMMENT ON COLUMN public.send_as.login IS 'The mailbox that logs in (SASL), which goes with the grant when removed.';
COMMENT ON COLUMN public.send_as.address IS 'The address it may use as sender, here or elsewhere.';
COMMENT ON COLUMN public.send_as.created IS 'When the grant was made.';

-- for the cascade from users and for listing one mailbox's grants
CREATE INDEX send_as_login_idx ON public.send_as (login);

-- audit (0103): key "login -> address"
CREATE TRIGGER audit_insert AFTER INSERT ON public.send_as
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('login', 'address');
CREATE TRIGGER audit_delete AFTER DELETE ON public.send_as
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('login', 'address');
CREATE TRIGGER audit_update AFTER UPDATE ON public.send_as
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('login', 'address');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.send_as
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

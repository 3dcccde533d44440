-- users: one row per mailbox, with the tutorial's columns first so its INSERT keeps
-- working. The domain column is derived from the address and must be a hosted domain:
-- a mailbox in a domain this server does not host would never receive mail.
-- Passwords are stored as hashes in Dovecot's {SCHEME} form; a plaintext cannot pass
-- the CHECK. Two mailboxes can never share a maildir.
-- depends: 0005_create_transports

CREATE TABLE public.users (
    email       text PRIMARY KEY
                CONSTRAINT users_email_valid CHECK (public.address_error(email) IS NULL),
    password    text NOT NULL
                CONSTRAINT users_password_hashed CHECK (public.password_hash_error(password) IS NULL),
    realname    text
                CONSTRAINT users_realname_printable
                CHECK (realname !~ '[[:cntrl:]]' AND length(realname) <= 255),
    maildir     text NOT NULL
                CONSTRAINT users_maildir_unique UNIQUE
                CONSTRAINT users_maildir_safe CHECK (public.maildir_error(maildir) IS NULL),
    created     timestamptz NOT NULL DEFAULT now(),
    domain      text NOT NULL GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED
                CONSTRAINT users_domain_hosted REFERENCES public.transports (domain),
    quota_bytes bigint
                CONSTRAINT users_quota_positive CHECK (quota_bytes > 0),
    active      boolean NOT NULL DEFAULT true,
    modified    timestamptz NOT NULL DEFAULT now()
);

-- remove_domain and listings filter by domain; the foreign key check on a domain
-- delete needs it too.
CREATE INDEX users_domain_idx ON public.users (domain);

COMMENT ON TABLE public.users IS 'Mailboxes (virtual_mailbox_maps, Dovecot passdb/userdb)';
COMMENT ON COLUMN public.users.maildir IS
    'Relative to virtual_mailbox_base / mail_home; ends in "/" so Postfix writes Maildir';
COMMENT ON COLUMN public.users.quota_bytes IS 'Dovecot quota; NULL means no quota';

-- aliases: virtual_alias_maps rows, one per (alias, destination), so an alias may fan
-- out to several destinations (the tutorial's PRIMARY KEY (alias) allowed only one).
-- The alias must be in a hosted domain: the tutorial's own example row, an alias in the
-- typo domain "exmaple.com", is refused here. A destination may be anywhere.
-- depends: 0006_create_users

CREATE TABLE public.aliases (
    alias    text NOT NULL
             CONSTRAINT aliases_alias_valid CHECK (public.address_error(alias) IS NULL),
    email    text NOT NULL
             CONSTRAINT aliases_destination_valid CHECK (public.address_error(email) IS NULL),
    domain   text NOT NULL GENERATED ALWAYS AS (split_part(alias, '@', 2)) STORED
             CONSTRAINT aliases_domain_hosted REFERENCES public.transports (domain),
    active   boolean NOT NULL DEFAULT true,
    created  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alias, email)
);

CREATE INDEX aliases_domain_idx ON public.aliases (domain);
-- who forwards to this address? (remove_mailbox, smtpd_sender_login_maps)
CREATE INDEX aliases_email_idx ON public.aliases (email);

COMMENT ON TABLE public.aliases IS 'Aliases and forwards (virtual_alias_maps)';
COMMENT ON COLUMN public.aliases.email IS 'Destination address, local or remote';

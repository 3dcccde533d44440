-- transports: the hosted domains, under the tutorial's table name so its map query keeps
-- working. One row per domain that this server accepts mail for. Fixed on purpose:
-- the tutorial's "gid INTEGER UNIQUE NOT NULL" allowed one domain per vmail group;
-- gid is now optional (NULL: the static virtual_gid_maps/Dovecot gid applies).
-- depends: 0004_create_validation_functions

CREATE TABLE public.transports (
    domain    text PRIMARY KEY
              CONSTRAINT transports_domain_valid CHECK (public.domain_name_error(domain) IS NULL),
    gid       integer
              CONSTRAINT transports_gid_positive CHECK (gid > 0),
    transport text NOT NULL DEFAULT 'virtual:'
              CONSTRAINT transports_transport_valid CHECK (public.transport_error(transport) IS NULL),
    active    boolean NOT NULL DEFAULT true,
    created   timestamptz NOT NULL DEFAULT now(),
    modified  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.transports IS
    'Hosted domains and their Postfix transport (transport_maps, virtual_mailbox_domains)';

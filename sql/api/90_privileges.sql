-- Table privileges, all in one place. Re-applied on every `migrate apply`: first every
-- grant on every table and view in public is taken back, then each role gets exactly
-- the list below, one object per line. Function grants sit below each function.
-- Nobody but mailowner may write: every change goes through the SQL API.

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, mailadmin, mailreader, mailauth;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, mailadmin, mailreader, mailauth;

-- mailadmin: provisioning front-ends and DBA accounts. Reads everything but hashes.
GRANT SELECT ON public.transports TO mailadmin;
GRANT SELECT ON public.aliases TO mailadmin;
GRANT SELECT ON public.mailboxes TO mailadmin;
GRANT SELECT ON public.settings TO mailadmin;
GRANT SELECT (email, realname, maildir, created, domain, quota_bytes, active, modified)
    ON public.users TO mailadmin;

-- mailreader: Postfix (postfix-maps/*.cf). What the maps select and filter on, no hashes.
GRANT SELECT (domain, transport, active) ON public.transports TO mailreader;
GRANT SELECT (email, maildir, domain, active) ON public.users TO mailreader;
GRANT SELECT (alias, email, domain, active) ON public.aliases TO mailreader;

-- mailauth: Dovecot passdb and userdb (dovecot/dovecot-sql.conf.ext). Needs the hashes.
GRANT SELECT (email, password, maildir, domain, quota_bytes, active) ON public.users TO mailauth;
GRANT SELECT (domain, gid, active) ON public.transports TO mailauth;

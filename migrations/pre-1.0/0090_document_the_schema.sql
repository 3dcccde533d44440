-- The catalogue documents itself: a comment on every table, column and view, and on
-- the validation helpers that CHECK constraints and the import use, so that psql's
-- \d+ and \df+ answer a DBA without the source at hand. The API functions get theirs
-- from the comment block above each one in sql/api/ (`migrate apply` copies it); the
-- roles theirs from sql/roles.sql (`mailbook init`, as a superuser). docs/sql-api.md
-- is generated from these comments (tests/test_sql_api_docs.py keeps it so).
-- depends: 0062_import_vacations

COMMENT ON TABLE public.transports IS
'One row per domain this server knows: a mailbox domain (transport virtual:), an alias domain of one (alias_of), or a relay domain whose mail is passed on (any other transport, e.g. smtp:[mx.example.net]). Change it with add_domain(), add_alias_domain(), set_domain_active(), set_domain_service(), set_domain_limits(), remove_domain().';
COMMENT ON COLUMN public.transports.domain IS 'The domain, lower case, e.g. example.com.';
COMMENT ON COLUMN public.transports.gid IS 'Group id that owns this domain''s mail on disk (virtual_gid_maps); NULL: the vmail group.';
COMMENT ON COLUMN public.transports.transport IS 'Postfix transport: virtual: for mailboxes here (left to virtual_transport), anything else relays.';
COMMENT ON COLUMN public.transports.active IS 'false: the domain''s mail is refused and its users cannot log in.';
COMMENT ON COLUMN public.transports.created IS 'When the row was added.';
COMMENT ON COLUMN public.transports.modified IS 'When the row last changed.';
COMMENT ON COLUMN public.transports.alias_of IS 'For an alias domain, the mailbox domain it stands for: x@this reaches x@alias_of.';
COMMENT ON COLUMN public.transports.disabled_services IS 'Services no address of the domain may use: imap, pop3, smtp, submission, sieve.';
COMMENT ON COLUMN public.transports.max_mailboxes IS 'At most this many mailboxes; NULL: no cap.';
COMMENT ON COLUMN public.transports.max_aliases IS 'At most this many alias addresses; NULL: no cap.';
COMMENT ON COLUMN public.transports.max_quota_bytes IS 'The sum of its mailboxes'' quotas may not exceed this; NULL: no cap.';

COMMENT ON TABLE public.users IS
'One row per mailbox. Read by Dovecot (as mailauth: password, maildir, quota) and Postfix (as mailreader: address and maildir); never shown to mailadmin with its hash (use the view mailboxes). Change it with add_mailbox(), set_password(), set_mailbox_active(), set_mailbox_quota(), set_mailbox_service(), remove_mailbox().';
COMMENT ON COLUMN public.users.email IS 'The address, lower case: user@domain.';
COMMENT ON COLUMN public.users.password IS 'The password hash with its Dovecot scheme, e.g. {BLF-CRYPT}$2a$10$...; never a plaintext.';
COMMENT ON COLUMN public.users.realname IS 'The user''s name, printable text, at most 255 characters.';
COMMENT ON COLUMN public.users.maildir IS 'The maildir relative to the mail base, ending in "/" (default domain/local/); no "..", never inside another mailbox''s.';
COMMENT ON COLUMN public.users.created IS 'When the mailbox was added.';
COMMENT ON COLUMN public.users.domain IS 'The address''s domain (a generated column), which must be a mailbox domain in transports.';
COMMENT ON COLUMN public.users.quota_bytes IS 'Storage quota in bytes, enforced by Dovecot (at RCPT through quota-status, and in LMTP); NULL: none.';
COMMENT ON COLUMN public.users.active IS 'false: mail to it is refused at RCPT and it cannot log in.';
COMMENT ON COLUMN public.users.modified IS 'When the row last changed.';
COMMENT ON COLUMN public.users.disabled_services IS 'Services this mailbox may not use, beside its domain''s.';
COMMENT ON COLUMN public.users.quota_messages IS 'Message-count quota; NULL: none.';

COMMENT ON TABLE public.aliases IS
'One row per (alias, destination): mail to alias goes to each destination. "@domain" is the domain''s catch-all, for local parts that are neither a mailbox nor an alias. Change it with add_alias(), remove_alias().';
COMMENT ON COLUMN public.aliases.alias IS 'The alias address, lower case, or "@domain" for a catch-all; in a mailbox domain.';
COMMENT ON COLUMN public.aliases.email IS 'One destination: a mailbox or alias here, or any address elsewhere.';
COMMENT ON COLUMN public.aliases.domain IS 'The alias''s domain (a generated column).';
COMMENT ON COLUMN public.aliases.active IS 'false: this forward is ignored by the maps.';
COMMENT ON COLUMN public.aliases.created IS 'When the row was added.';

COMMENT ON TABLE public.send_as IS
'Extra send-as grants for smtpd_sender_login_maps: login may also send as address. A mailbox may always send as itself and as the aliases that forward to it. Change it with allow_send_as(), disallow_send_as().';
COMMENT ON COLUMN public.send_as.login IS 'The mailbox that logs in (SASL), which goes with the grant when removed.';
COMMENT ON COLUMN public.send_as.address IS 'The address it may use as sender, here or elsewhere.';
COMMENT ON COLUMN public.send_as.created IS 'When the grant was made.';

COMMENT ON TABLE public.settings IS
'One row of per-database settings only mailowner may change (a table, not a GUC a session could SET).';
COMMENT ON COLUMN public.settings.id IS 'Always true: the table holds one row.';
COMMENT ON COLUMN public.settings.bcrypt_cost IS 'bcrypt cost for new hashes (default 10, about 60 ms a hash).';
COMMENT ON COLUMN public.settings.password_min_length IS 'Shortest password change_password() accepts from an end user.';
COMMENT ON COLUMN public.settings.password_max_failures IS 'Wrong current passwords change_password() allows per mailbox within the window.';
COMMENT ON COLUMN public.settings.password_failure_window IS 'The window for password_max_failures.';

COMMENT ON TABLE public.audit_log IS
'Who changed what in the mail tables, and when: one row per changed row, by the API or by direct DML. Never a value: only the row''s key and, for an UPDATE, the names of the changed columns.';
COMMENT ON COLUMN public.audit_log.id IS 'Order of writing.';
COMMENT ON COLUMN public.audit_log.at IS 'Time of the transaction.';
COMMENT ON COLUMN public.audit_log.login_role IS 'The role that logged in (session_user).';
COMMENT ON COLUMN public.audit_log.acting_role IS 'The role in effect (current_user before the API''s SECURITY DEFINER), e.g. after SET ROLE mailadmin.';
COMMENT ON COLUMN public.audit_log.txid IS 'The transaction, to group the rows of one change.';
COMMENT ON COLUMN public.audit_log.table_name IS 'The table changed.';
COMMENT ON COLUMN public.audit_log.operation IS 'INSERT, UPDATE, DELETE, or a refusal.';
COMMENT ON COLUMN public.audit_log.row_key IS 'The changed row''s key (an address, a domain, alias -> destination).';
COMMENT ON COLUMN public.audit_log.changed IS 'For an UPDATE, the columns whose values changed.';
COMMENT ON COLUMN public.audit_log.reason IS 'For a refusal, why.';

COMMENT ON TABLE public.import_staging IS
'Rows of a CSV import (`mailbook import`), staged as text by COPY and checked together by import_batch() before anything is written; emptied when the import ends.';
COMMENT ON COLUMN public.import_staging.batch IS 'The importing transaction.';
COMMENT ON COLUMN public.import_staging.seq IS 'Order in the file (the line number is worked out from it).';
COMMENT ON COLUMN public.import_staging.kind IS 'domain, mailbox, alias, sendas or vacation.';
COMMENT ON COLUMN public.import_staging.address IS 'The domain, mailbox, alias or grant''s address.';
COMMENT ON COLUMN public.import_staging.destination IS 'An alias''s destination, a grant''s login, or an alias domain''s target.';
COMMENT ON COLUMN public.import_staging.password IS 'A mailbox''s plaintext password, hashed on import and never kept.';
COMMENT ON COLUMN public.import_staging.password_hash IS 'A mailbox''s hash from another server ({SCHEME}... or bare crypt).';
COMMENT ON COLUMN public.import_staging.realname IS 'A mailbox''s real name.';
COMMENT ON COLUMN public.import_staging.maildir IS 'A mailbox''s maildir (default domain/local/).';
COMMENT ON COLUMN public.import_staging.quota_bytes IS 'A mailbox''s quota in bytes.';
COMMENT ON COLUMN public.import_staging.transport IS 'A domain''s transport (default virtual:).';
COMMENT ON COLUMN public.import_staging.gid IS 'A domain''s group id.';
COMMENT ON COLUMN public.import_staging.active IS 'true or false (default true).';
COMMENT ON COLUMN public.import_staging.quota_messages IS 'A mailbox''s message quota.';
COMMENT ON COLUMN public.import_staging.services_off IS 'Services turned off, space-separated.';
COMMENT ON COLUMN public.import_staging.max_mailboxes IS 'A domain''s mailbox cap.';
COMMENT ON COLUMN public.import_staging.max_aliases IS 'A domain''s alias cap.';
COMMENT ON COLUMN public.import_staging.max_quota_bytes IS 'A domain''s cap on the sum of quotas.';
COMMENT ON COLUMN public.import_staging.subject IS 'A vacation reply''s subject.';
COMMENT ON COLUMN public.import_staging.body IS 'A vacation reply''s body.';
COMMENT ON COLUMN public.import_staging.starts IS 'A vacation''s first moment (ISO 8601).';
COMMENT ON COLUMN public.import_staging.ends IS 'A vacation''s last moment (ISO 8601).';
COMMENT ON COLUMN public.import_staging.days IS 'Days between two replies to the same sender.';

COMMENT ON TABLE public.maildir_purge_queue IS
'Maildirs of removed mailboxes, waiting for `mailbook maildirs purge` to delete them from disk (SQL cannot touch files). A mailbox added again with a queued path takes it back.';
COMMENT ON COLUMN public.maildir_purge_queue.maildir IS 'The maildir, relative to the mail base.';
COMMENT ON COLUMN public.maildir_purge_queue.email IS 'The mailbox that used it.';
COMMENT ON COLUMN public.maildir_purge_queue.queued IS 'When the mailbox was removed.';

COMMENT ON TABLE public.maildir_roots IS
'Internal: one row per first path segment of the maildirs, the lock that keeps concurrent writers from nesting one maildir inside another.';
COMMENT ON COLUMN public.maildir_roots.root IS 'A maildir''s first path segment.';

COMMENT ON TABLE public.password_failures IS
'Recent wrong current passwords given to change_password(), per mailbox, for its lockout; times only.';
COMMENT ON COLUMN public.password_failures.email IS 'The mailbox.';
COMMENT ON COLUMN public.password_failures.failed_at IS 'When each failure happened, within the window.';

COMMENT ON TABLE public.quota_usage IS
'Each mailbox''s usage as Dovecot counts it, written by Dovecot itself (quota_clone, as mailquota) after every change; mailbook only reads it.';
COMMENT ON COLUMN public.quota_usage.email IS 'The mailbox (the row goes with it).';
COMMENT ON COLUMN public.quota_usage.bytes IS 'Bytes stored.';
COMMENT ON COLUMN public.quota_usage.messages IS 'Messages stored.';
COMMENT ON COLUMN public.quota_usage.measured IS 'When Dovecot last wrote the row.';

COMMENT ON TABLE public.vacations IS
'One out-of-office reply per mailbox, turned into a Sieve vacation script that Dovecot reads through the view sieve_scripts. Change it with set_vacation(), clear_vacation().';
COMMENT ON COLUMN public.vacations.email IS 'The mailbox that replies.';
COMMENT ON COLUMN public.vacations.subject IS 'The reply''s subject (one line).';
COMMENT ON COLUMN public.vacations.body IS 'The reply''s text.';
COMMENT ON COLUMN public.vacations.starts IS 'No replies before this moment; NULL: from now.';
COMMENT ON COLUMN public.vacations.ends IS 'No replies after this moment; NULL: until cleared.';
COMMENT ON COLUMN public.vacations.days IS 'At most one reply per sender in this many days (RFC 5230).';
COMMENT ON COLUMN public.vacations.created IS 'When the reply was set.';
COMMENT ON COLUMN public.vacations.modified IS 'When it last changed.';

COMMENT ON VIEW public.mailboxes IS
'Every mailbox without its password hash, with Dovecot''s usage: what mailadmin reads (SELECT * FROM mailboxes).';
COMMENT ON COLUMN public.mailboxes.used_bytes IS 'Bytes stored, as Dovecot last wrote (NULL before its first write).';
COMMENT ON COLUMN public.mailboxes.used_messages IS 'Messages stored, as Dovecot last wrote.';
COMMENT ON VIEW public.sieve_scripts IS
'The vacation script of each mailbox with an active reply, as Pigeonhole''s dict reads it (as mailauth).';
COMMENT ON VIEW public.nested_maildirs IS
'Pairs of mailboxes whose maildirs nest (one inside the other): rows older than the rule; empty on a database built by mailbook.';
COMMENT ON VIEW public.import_rows IS 'Internal: import_staging''s rows normalised (lower case, defaults) for import_batch().';
COMMENT ON VIEW public.import_lines IS 'Internal: the file line of each staged row, for error messages.';

-- the helpers the tables' CHECK constraints and triggers use (SECURITY INVOKER)
COMMENT ON FUNCTION public.quoted(text) IS 'A value in double quotes for error messages: control characters shown as ?, cut after 80 characters.';
COMMENT ON FUNCTION public.domain_name_error(text) IS 'Why a domain name is invalid (lower-case LDH labels, a dot, at most 253 characters), or NULL.';
COMMENT ON FUNCTION public.address_error(text) IS 'Why an address is invalid for a mailbox or alias (lower case, local@domain, RFC 5321 lengths), or NULL.';
COMMENT ON FUNCTION public.alias_error(text) IS 'Why an alias address is invalid (an address, or "@domain" for a catch-all), or NULL.';
COMMENT ON FUNCTION public.maildir_error(text) IS 'Why a maildir is unsafe (empty, absolute, "..", control characters, over 255 characters, not ending in "/"), or NULL.';
COMMENT ON FUNCTION public.transport_error(text) IS 'Why a Postfix transport is invalid (name:nexthop, e.g. virtual: or smtp:[relay.example.com]), or NULL.';
COMMENT ON FUNCTION public.password_hash_error(text) IS 'Why a password hash is not one Dovecot verifies ({BLF-CRYPT}, {SHA512-CRYPT}, ...), or NULL.';
COMMENT ON FUNCTION public.password_error(text) IS 'Why a password cannot be stored (NULL, empty, over bcrypt''s 72 bytes, or a hash given as a password), or NULL.';
COMMENT ON FUNCTION public.normalised_password_hash(text) IS 'A hash with its {SCHEME} prefix added when a bare crypt string was given.';
COMMENT ON FUNCTION public.default_maildir(text) IS 'The maildir an address gets when none is given: domain/local/.';
COMMENT ON FUNCTION public.realname_error(text) IS 'Why a real name is refused (control characters, over 255 characters), or NULL.';
COMMENT ON FUNCTION public.service_list_error(text[]) IS 'Why a list of service names is invalid (an unknown name), or NULL.';
COMMENT ON FUNCTION public.is_relay_transport(text) IS 'Whether a transport relays (anything but virtual:).';
COMMENT ON FUNCTION public.maildir_parents(text) IS 'Every parent path of a maildir, to find one maildir inside another.';
COMMENT ON FUNCTION public.maildirs_around(text) IS 'The maildirs (and their mailboxes) that contain the given path, and the first one inside it.';
COMMENT ON FUNCTION public.code_point(text) IS 'A character as U+XXXX, for messages about unprintable input.';
COMMENT ON FUNCTION public.csv_cell_out(text) IS 'A value as an export cell: one starting with a spreadsheet formula character gets a leading quote.';
COMMENT ON FUNCTION public.csv_cell_in(text) IS 'The inverse of csv_cell_out() for an imported cell.';
COMMENT ON FUNCTION public.vacation_text_error(text, boolean) IS 'Why a vacation subject (true) or body (false) is refused, or NULL.';
COMMENT ON FUNCTION public.sieve_string(text) IS 'Text as a Sieve string literal that nothing in it can end early.';
COMMENT ON FUNCTION public.vacation_script(text, text, integer, text[]) IS 'The Sieve script of a vacation reply (subject, body, days, the mailbox''s addresses).';
COMMENT ON FUNCTION public.vacation_time(text) IS 'An imported vacation time (ISO 8601) as timestamptz.';
COMMENT ON FUNCTION public.vacation_time_error(text, text) IS 'Why an imported vacation time is invalid, or NULL.';
COMMENT ON FUNCTION public.refuse_unhosted_domains() IS 'Trigger: a mailbox or alias must be in a hosted domain.';
COMMENT ON FUNCTION public.refuse_orphaning_domains() IS 'Trigger: a domain with mailboxes or aliases cannot go (remove_domain(..., true) takes them along).';
COMMENT ON FUNCTION public.refuse_alias_domain_misuse() IS 'Trigger: no mailbox or alias inside an alias domain, and no alias domain of an alias domain.';
COMMENT ON FUNCTION public.refuse_over_domain_limits() IS 'Trigger: a domain''s caps (max_mailboxes, max_aliases, max_quota_bytes) hold.';
COMMENT ON FUNCTION public.refuse_mailboxes_in_relay_domains() IS 'Trigger: no mailbox in a relay domain.';
COMMENT ON FUNCTION public.refuse_nested_maildirs() IS 'Trigger: no maildir inside another mailbox''s.';
COMMENT ON FUNCTION public.queue_removed_maildirs() IS 'Trigger: a removed mailbox''s maildir joins maildir_purge_queue.';
COMMENT ON FUNCTION public.keep_reused_maildirs() IS 'Trigger: a mailbox added with a queued maildir takes it back from the purge queue.';
COMMENT ON FUNCTION public.audit_statement() IS 'Trigger: one audit_log row per inserted or deleted row, from the statement''s transition table.';
COMMENT ON FUNCTION public.audit_update() IS 'Trigger: one audit_log row per updated row, naming the changed columns.';
COMMENT ON FUNCTION public.quota_usage_measured() IS 'Trigger: stamps quota_usage.measured with the time of each write.';

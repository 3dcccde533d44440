-- Pigeonhole 2.4.1 (Debian 13) defers every delivery whose `before` Sieve script is missing
-- ("451 4.2.0 Temporarily unable to access necessary Sieve scripts"): its
-- sieve_script_sequence_next() turns the dict storage's "not found" into an error (fixed in
-- Pigeonhole 2.4.2, commit 38ead18e). The view sieve_scripts has a row only while a
-- vacation reply is due, so on 2.4.1 mail would flow only to mailboxes on vacation.
-- sieve_delivery_scripts gives every mailbox a script at delivery: its vacation script
-- while one is due, else one that does nothing (implicit keep). mailbook's Dovecot 2.4
-- configuration reads it (dovecot/2.4/dovecot-dict-sieve.conf.ext); 2.3's keeps
-- sieve_scripts, where a missing script is simply skipped.
-- depends: 0203_bound_quota_usage_counters
CREATE VIEW public.sieve_delivery_scripts AS
SELECT s.username, s.name, s.id, s.script
  FROM public.sieve_scripts s
UNION ALL
SELECT u.email, 'mailbook-vacation'::text, 'none'::text, E'# no vacation reply is due\r\n'::text
  FROM public.users u
 WHERE NOT EXISTS (SELECT FROM public.sieve_scripts s WHERE s.username = u.email);
ALTER VIEW public.sieve_delivery_scripts OWNER TO mailowner;
COMMENT ON VIEW public.sieve_delivery_scripts IS
'Every mailbox''s vacation script as Pigeonhole 2.4''s dict reads it (as mailauth): sieve_scripts while a reply is due, else a script that does nothing.';
REVOKE ALL ON public.sieve_delivery_scripts FROM PUBLIC;
GRANT SELECT ON public.sieve_delivery_scripts TO mailauth;

-- vacations: an out-of-office reply per mailbox, set with set_vacation() and read by
-- Dovecot's Sieve (Pigeonhole) at delivery through its dict: the view sieve_scripts
-- hands over a generated RFC 5230 `vacation` script while the reply is due (starts <=
-- now() < ends), and nothing otherwise. No file is written by provisioning; the user's
-- own scripts (ManageSieve) run after it. Sieve's vacation itself keeps RFC 3834: at
-- most one reply per sender per `days`, none to the null sender, to lists (List-Id and
-- friends), to Precedence bulk/junk/list or to Auto-Submitted mail.
-- Subject and body are user text: sieve_string() quotes them so that no text can
-- change the script (the only specials in a Sieve quoted string are " and \).
-- depends: 0060_create_quota_usage

-- vacation_text_error(text, multiline): NULL when the text may be a reply's subject
-- (one line) or body (lines), else why not. No control characters but tab and line
-- breaks (in a body); at most 998 characters of subject (a header line's limit) and
-- 100,000 of body.
CREATE FUNCTION public.vacation_text_error(value text, multiline boolean) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN value IS NULL OR btrim(value, E' \t\r\n') = '' THEN
        CASE WHEN multiline THEN 'a vacation body must not be empty' ELSE 'a vacation subject must not be empty' END
    WHEN NOT multiline AND length(value) > 998 THEN 'a vacation subject may have at most 998 characters'
    WHEN multiline AND length(value) > 100000 THEN 'a vacation body may have at most 100000 characters'
    WHEN NOT multiline AND value ~ '[\x01-\x1f\x7f]' THEN
        'a vacation subject must be one line without control characters, not ' || public.code_point(substring(value FROM '[\x01-\x1f\x7f]'))
    WHEN multiline AND value ~ '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' THEN
        'a vacation body must not hold control characters but tab and line breaks, not '
        || public.code_point(substring(value FROM '[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]'))
END
$f$;

-- sieve_string(text): a Sieve quoted string (RFC 5228 2.4.2) holding exactly the text:
-- " and \ escaped, every line break CRLF (the only line break a quoted string may hold).
CREATE FUNCTION public.sieve_string(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $f$
SELECT '"' || regexp_replace(replace(replace(value, '\', '\\'), '"', '\"'), '\r\n|\r|\n', E'\r\n', 'g') || '"'
$f$;

-- vacation_script(subject, body, days, addresses): the Sieve script of one reply.
CREATE FUNCTION public.vacation_script(subject text, body text, days integer, addresses text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT E'require ["vacation"];\r\n'
       || 'vacation :days ' || days
       || ' :subject ' || public.sieve_string(subject)
       || CASE WHEN cardinality(addresses) > 0
               THEN ' :addresses [' || (SELECT string_agg(public.sieve_string(a), ', ' ORDER BY a) FROM unnest(addresses) a) || ']'
               ELSE '' END
       || E'\r\n  ' || public.sieve_string(body) || E';\r\n'
$f$;

CREATE TABLE public.vacations (
    email    text PRIMARY KEY
             REFERENCES public.users (email) ON DELETE CASCADE ON UPDATE CASCADE,
    subject  text NOT NULL
             CONSTRAINT vacations_subject_valid CHECK (public.vacation_text_error(subject, false) IS NULL),
    body     text NOT NULL
             CONSTRAINT vacations_body_valid CHECK (public.vacation_text_error(body, true) IS NULL),
    starts   timestamptz NOT NULL DEFAULT now(),
    ends     timestamptz,
    days     integer NOT NULL DEFAULT 7
             CONSTRAINT vacations_days_range CHECK (days BETWEEN 1 AND 365),
    created  timestamptz NOT NULL DEFAULT now(),
    modified timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT vacations_ends_after_starts CHECK (ends > starts)
);
COMMENT ON TABLE public.vacations IS
    'Out-of-office replies (set_vacation); Dovecot''s Sieve reads them through the view sieve_scripts';

-- the same audit as the other mail tables (0015): key the mailbox
CREATE TRIGGER audit_insert AFTER INSERT ON public.vacations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_delete AFTER DELETE ON public.vacations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement('email');
CREATE TRIGGER audit_update AFTER UPDATE ON public.vacations
    FOR EACH ROW EXECUTE FUNCTION public.audit_update('email');
CREATE TRIGGER audit_truncate AFTER TRUNCATE ON public.vacations
    FOR EACH STATEMENT EXECUTE FUNCTION public.audit_statement();

-- sieve_scripts: what Pigeonhole's dict storage asks (dovecot/dovecot-dict-sieve.conf.ext),
-- as mailauth: the id of the script named "mailbook-vacation" for a user, then the
-- script of that id. A row only while the reply is due; the id changes with the text,
-- so Dovecot never runs a stale script.
CREATE VIEW public.sieve_scripts AS
SELECT v.email AS username, 'mailbook-vacation'::text AS name, md5(s.script) AS id, s.script
  FROM public.vacations v
 -- Sieve's :addresses, the mailbox's own being implicit: the active aliases forwarding
 -- to it (not a catch-all), and those and its own address in every active alias domain
 -- of its domain. In the view, not a function: the view reads the tables as its owner.
 CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(DISTINCT x.address ORDER BY x.address), '{}') AS addresses FROM (
        SELECT a.alias AS address FROM public.aliases a
         WHERE a.email = v.email AND a.active AND left(a.alias, 1) <> '@'
        UNION
        SELECT split_part(o.address, '@', 1) || '@' || d.domain
          FROM (SELECT v.email AS address
                UNION
                SELECT a.alias FROM public.aliases a
                 WHERE a.email = v.email AND a.active AND left(a.alias, 1) <> '@') o
          JOIN public.transports d ON d.alias_of = split_part(o.address, '@', 2) AND d.active
    ) x) own
 CROSS JOIN LATERAL (SELECT public.vacation_script(v.subject, v.body, v.days, own.addresses) AS script) s
 WHERE v.starts <= now() AND (v.ends IS NULL OR now() < v.ends);
COMMENT ON VIEW public.sieve_scripts IS
    'The generated Sieve vacation scripts due now, for Dovecot''s dict (as mailauth)';

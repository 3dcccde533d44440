-- Catch-all: an alias "@example.com" receives the mail for local parts of example.com
-- that are neither a mailbox nor an alias there: Postfix's own notation (virtual(5)),
-- as PostfixAdmin stores it. Existing mailboxes and aliases keep their mail; that rule
-- lives in postfix-maps/virtual.cf's one query, not here. Only the alias column's check
-- changes, to accept "@domain" besides an address.
-- depends: 0016_create_alias_domains

-- alias_error(alias): NULL for an address or an "@domain" catch-all, else the problem.
CREATE FUNCTION public.alias_error(alias text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $f$
SELECT CASE
    WHEN left(alias, 1) = '@' THEN public.domain_name_error(substr(alias, 2))
    ELSE public.address_error(alias)
END
$f$;
-- front-ends may validate with it, like the other *_error() functions (0004)
REVOKE ALL ON FUNCTION public.alias_error(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.alias_error(text) TO mailadmin;

ALTER TABLE public.aliases
    DROP CONSTRAINT aliases_alias_valid,
    ADD CONSTRAINT aliases_alias_valid CHECK (public.alias_error(alias) IS NULL);

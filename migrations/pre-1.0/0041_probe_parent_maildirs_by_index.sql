-- maildirs_around() looked for a maildir's parents with `IN (SELECT maildir_parents(..))`.
-- Inlined into refuse_nested_maildirs()'s check of a statement's rows, the planner took
-- maildir_parents() for 1,000 rows and hashed them against a sequential scan of users,
-- once per written maildir: a statement adding N mailboxes read users N times. Importing
-- 9,000 mailboxes into an empty mailbook took 9.8 s, 3,000 took 1.2 s (quadratic; an
-- initial load of 10,000 or more sorts the table instead and was not affected). Found
-- by benchmarks/movein.py: a PostfixAdmin or vmm installation of a few thousand mailboxes
-- moves in by this path. The parents (a handful per maildir) are now one array probed in
-- the unique index: 9,000 mailboxes 0.32 s. Same rows, same order of checks.
-- depends: 0040_accept_cram_md5_hashes

CREATE OR REPLACE FUNCTION public.maildirs_around(path text) RETURNS TABLE (maildir text, email text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $f$
SELECT p.maildir, p.email FROM public.users p
 WHERE p.maildir = ANY (ARRAY(SELECT public.maildir_parents(maildirs_around.path)))
UNION ALL
(SELECT c.maildir, c.email FROM public.users c
  WHERE c.maildir > maildirs_around.path AND c.maildir < maildirs_around.path || pg_catalog.chr(127)
    AND pg_catalog.starts_with(c.maildir, maildirs_around.path)
  ORDER BY c.maildir LIMIT 1)
$f$;

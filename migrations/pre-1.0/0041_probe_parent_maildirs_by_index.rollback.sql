-- Undo 0041: maildirs_around() as 0026 made it (parents through IN (SELECT ...)).
CREATE OR REPLACE FUNCTION public.maildirs_around(path text) RETURNS TABLE (maildir text, email text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $f$
SELECT p.maildir, p.email FROM public.users p
 WHERE p.maildir IN (SELECT public.maildir_parents(maildirs_around.path))
UNION ALL
(SELECT c.maildir, c.email FROM public.users c
  WHERE c.maildir > maildirs_around.path AND c.maildir < maildirs_around.path || pg_catalog.chr(127)
    AND pg_catalog.starts_with(c.maildir, maildirs_around.path)
  ORDER BY c.maildir LIMIT 1)
$f$;

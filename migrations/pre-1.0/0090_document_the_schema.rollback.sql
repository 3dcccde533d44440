-- Takes the comments away again: every table, column, view and helper function of
-- schema public that 0090 commented gets none (the API's come back with each apply).
DO $undo$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT format('COMMENT ON %s %s IS NULL',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, c.oid::regclass) AS stmt
          FROM pg_catalog.pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname NOT LIKE '%yoyo%'
        UNION ALL
        SELECT format('COMMENT ON COLUMN %s.%I IS NULL', c.oid::regclass, a.attname)
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
           AND c.relname NOT LIKE '%yoyo%' AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT format('COMMENT ON FUNCTION %s IS NULL', p.oid::regprocedure)
          FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND NOT p.prosecdef
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE r.stmt;
    END LOOP;
END
$undo$;

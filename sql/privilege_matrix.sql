-- The privilege matrix: what each role may do with the mail database, schema public and
-- every table, view, sequence and function in it, as PostgreSQL itself answers (the
-- has_*_privilege() functions, which count role membership and ownership). Where a role
-- may read only some columns of a table, they are named. Extension functions are left
-- out (pgcrypto lives in schema crypto since 0030, which only mailowner may use). The
-- matrix is a function of what sql/catalogue.sql lists (ACLs, owners, the four roles'
-- attributes and memberships), so a database `mailbook doctor` passes prints this one.
-- Parameter: %(roles)s, role names; 'public' stands for PUBLIC.
WITH roles AS (
    SELECT r.role, r.n FROM unnest(%(roles)s::text[]) WITH ORDINALITY AS r(role, n)
),
objects (kind, oid, name, privs) AS (
    SELECT 'database', d.oid, d.datname::text, ARRAY['CONNECT', 'TEMP', 'CREATE']
      FROM pg_catalog.pg_database d WHERE d.datname = current_database()
    UNION ALL
    SELECT 'schema', 'public'::regnamespace::oid, 'public', ARRAY['USAGE', 'CREATE']
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END,
           c.oid, c.relname::text,
           CASE c.relkind WHEN 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] END
      FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
    UNION ALL
    SELECT 'function', p.oid, p.oid::regprocedure::text, ARRAY['EXECUTE']
      FROM pg_catalog.pg_proc p
     WHERE p.pronamespace = 'public'::regnamespace
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
),
granted AS (
    SELECT o.kind, o.name, r.role, r.n,
           array(SELECT priv FROM unnest(o.privs) WITH ORDINALITY AS x(priv, i)
                  WHERE CASE o.kind
                            WHEN 'database' THEN pg_catalog.has_database_privilege(r.role, o.oid, priv)
                            WHEN 'schema' THEN pg_catalog.has_schema_privilege(r.role, o.oid, priv)
                            WHEN 'sequence' THEN pg_catalog.has_sequence_privilege(r.role, o.oid, priv)
                            WHEN 'function' THEN pg_catalog.has_function_privilege(r.role, o.oid, priv)
                            ELSE pg_catalog.has_table_privilege(r.role, o.oid, priv) END
                  ORDER BY i) AS privs,
           -- columns readable, or insertable, without the table-wide privilege
           array(SELECT c.priv || ' (' || string_agg(a.attname, ', ' ORDER BY a.attnum) || ')'
                   FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) WITH ORDINALITY AS c(priv, i)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = o.oid AND a.attnum > 0 AND NOT a.attisdropped
                  WHERE o.kind IN ('table', 'view') AND NOT pg_catalog.has_table_privilege(r.role, o.oid, c.priv)
                    AND pg_catalog.has_column_privilege(r.role, o.oid, a.attnum, c.priv)
                  GROUP BY c.priv, c.i ORDER BY c.i) AS columns
      FROM objects o CROSS JOIN roles r
)
SELECT g.kind, g.name, g.role,
       concat_ws(' ', nullif(array_to_string(g.privs, ' '), ''),
                 nullif(array_to_string(g.columns, ' '), '')) AS may
  FROM granted g
 ORDER BY array_position(ARRAY['database', 'schema', 'table', 'view', 'sequence', 'function'], g.kind),
          g.name, g.n

"""docs/sql-api.md from the catalogue's own comments (migration 0090, the comment blocks
above each function in sql/api/, sql/roles.sql): what psql's \\d+, \\df+ and \\du+ show,
as one page. Regenerate after a change of the schema or the API:

    MAILBOOK_WRITE_EXPECTED=1 .venv/bin/python -m pytest -q tests/test_sql_api_docs.py
"""

from __future__ import annotations

import psycopg

MARK = ("<!-- Below: generated from the catalogue's comments; do not edit by hand. After a change:"
        " MAILBOOK_WRITE_EXPECTED=1 .venv/bin/python -m pytest -q tests/test_sql_api_docs.py -->\n")

HEADER = """\
## Reference, from the catalogue

What `\\d+`, `\\df+` and `\\du+` show in psql, on one page. Every function below runs as
`mailowner` (SECURITY DEFINER, `search_path` pinned) unless it is in the last group.
"""

ROLES = ("mailowner", "mailadmin", "mailreader", "mailauth", "mailquota", "mailwebmail", "maildkim")

_FUNCTIONS = """
SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
       pg_catalog.pg_get_function_result(p.oid), p.prosecdef,
       coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), ''),
       ARRAY(SELECT r.rolname FROM pg_catalog.pg_roles r
              WHERE r.rolname = ANY (%(roles)s) AND r.rolname <> 'mailowner'
                AND pg_catalog.has_function_privilege(r.oid, p.oid, 'EXECUTE')
                AND EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = r.oid)
              ORDER BY array_position(%(roles)s, r.rolname::text))
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
 ORDER BY p.proname
"""

_RELATIONS = """
SELECT c.relname, c.relkind, coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), ''),
       ARRAY(SELECT ARRAY[a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
                          coalesce(pg_catalog.col_description(c.oid, a.attnum), '')]
               FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
   AND c.relname NOT LIKE '%%yoyo%%'
 ORDER BY c.relkind, c.relname
"""


def catalogue(conn: psycopg.Connection) -> dict:
    roles = [(r, d or "") for r, d in conn.execute(
        "SELECT r.rolname, pg_catalog.shobj_description(r.oid, 'pg_authid') FROM pg_catalog.pg_roles r"
        " WHERE r.rolname = ANY (%(roles)s) ORDER BY array_position(%(roles)s, r.rolname::text)",
        {"roles": list(ROLES)})]
    return {"roles": roles,
            "relations": conn.execute(_RELATIONS).fetchall(),
            "functions": conn.execute(_FUNCTIONS, {"roles": list(ROLES)}).fetchall()}


def undocumented(conn: psycopg.Connection) -> list[str]:
    """Every role, table, column, view and function without a comment."""
    c = catalogue(conn)
    out = [f"role {r}" for r, d in c["roles"] if not d]
    for name, kind, doc, columns in c["relations"]:
        out += [f"{'view' if kind == 'v' else 'table'} {name}"] if not doc else []
        out += [f"column {name}.{col}" for col, _, d in columns if not d and kind == "r"]
    out += [f"function {name}({args})" for name, args, _, _, doc, _ in c["functions"] if not doc]
    return out


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown(conn: psycopg.Connection) -> str:
    """The generated part of docs/sql-api.md (what follows MARK)."""
    c = catalogue(conn)
    out = [HEADER, "### Roles", "", "| role | what it is for |", "|---|---|"]
    out += [f"| `{r}` | {_cell(d)} |" for r, d in c["roles"]]
    groups = [
        ("Provisioning: what `mailadmin` may call", lambda g, definer: "mailadmin" in g and definer),
        ("Lookups: what Postfix and Dovecot call", lambda g, definer: "mailadmin" not in g and g and definer),
        ("Internal functions (no role but mailowner may call them)", lambda g, definer: not g and definer),
        ("Validation helpers (SECURITY INVOKER; CHECK constraints, triggers and the import use them)",
         lambda g, definer: not definer),
    ]
    for title, wanted in groups:
        out += ["", f"### {title}", ""]
        for name, args, result, definer, doc, grantees in c["functions"]:
            if not wanted(grantees, definer):
                continue
            who = f" — callable by {', '.join(f'`{g}`' for g in grantees)}" if grantees else ""
            lines = doc.strip().splitlines()
            if lines and lines[0].startswith(f"{name}("):  # the block's signature line: the heading says it
                lines = lines[1:]
            out += [f"#### `{name}({args})` → `{result}`{who}", "", "\n".join(lines).strip(), ""]
    for kind, title in (("r", "Tables"), ("v", "Views")):
        out += ["", f"### {title}", ""]
        for name, k, doc, columns in c["relations"]:
            if k != kind:
                continue
            out += [f"#### `{name}`", "", _cell(doc), "", "| column | type | meaning |", "|---|---|---|"]
            out += [f"| `{col}` | {typ} | {_cell(d)} |" for col, typ, d in columns]
            out.append("")
    return "\n".join(out).rstrip() + "\n"

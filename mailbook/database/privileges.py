"""`mailbook privileges`: the privilege matrix of a live mail database, as a Markdown
table (the README prints one). The query is sql/privilege_matrix.sql."""

from __future__ import annotations

import psycopg

from mailbook import data_dir

ROLES = ("mailowner", "mailadmin", "maildomainadmin", "mailreader", "mailauth", "mailquota", "mailwebmail", "maildkim",
         "public")


def matrix(conn: psycopg.Connection, roles: tuple[str, ...] = ROLES) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, name, {role: what it may do}) for each object, in the query's order."""
    query = (data_dir("sql") / "privilege_matrix.sql").read_text()
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for kind, name, role, may in conn.execute(query, {"roles": list(roles)}):
        rows.setdefault((kind, name), {})[role] = may
    return [(kind, name, cells) for (kind, name), cells in rows.items()]


def markdown(rows, roles: tuple[str, ...] = ROLES) -> str:
    """One line per object; functions that every role may use alike share a line."""
    heads = [r if r != "public" else "PUBLIC (any other role)" for r in roles]
    out = ["| object | " + " | ".join(heads) + " |", "|---|" + "---|" * len(roles)]
    functions: dict[tuple[str, ...], list[str]] = {}
    for kind, name, cells in rows:
        vector = tuple(cells.get(r, "") for r in roles)
        if kind == "function":
            functions.setdefault(vector, []).append(name.split("(")[0])
            continue
        out.append(f"| {kind} `{name}` | " + " | ".join(v or "–" for v in vector) + " |")
    for vector, names in functions.items():
        listed = ", ".join(f"`{n}`" for n in dict.fromkeys(names))
        out.append(f"| functions {listed} | " + " | ".join(v or "–" for v in vector) + " |")
    return "\n".join(out) + "\n"

"""`mailbook init`: the cluster-wide part of setting up, done as a superuser."""

from __future__ import annotations

from psycopg import sql
from psycopg.conninfo import make_conninfo

from mailbook import Failure, connect, data_dir


def init_database(dsn: str | None, database: str) -> list[str]:
    """Create the five roles and `database` owned by mailowner, if missing.
    Returns what was done, one line each. Idempotent."""
    done: list[str] = []
    with connect(dsn) as conn:
        conn.add_notice_handler(lambda d: done.append(d.message_primary))
        if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
            raise Failure("`mailbook init` creates roles and a database: connect as a superuser")
        conn.execute((data_dir("sql") / "roles.sql").read_text())
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if row is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER mailowner").format(sql.Identifier(database)))
            done.append(f"created database {database} owned by mailowner")
        elif row[0] != "mailowner":
            raise Failure(
                f'database "{database}" exists and is owned by {row[0]}; '
                f"ALTER DATABASE {database} OWNER TO mailowner, or choose another --database"
            )
        else:
            done.append(f"database {database} already exists, owned by mailowner")
        old_server = conn.info.server_version < 150000
    if old_server:
        # before PostgreSQL 15, schema public belongs to the bootstrap superuser
        with connect(make_conninfo(dsn or "", dbname=database)) as conn:
            conn.execute("ALTER SCHEMA public OWNER TO mailowner")
    return done

"""The mail database as the tests and benchmarks set it up: a private cluster, `mailbook
init`, `migrate apply`, the service roles' passwords; and checks on what is in it."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import psycopg.sql

from mailbook.demo.cluster import PrivateCluster
from mailbook.passwords import set_role_password

from .process import cli

ADMIN_LOGIN = "alice"  # a DBA/front-end account, member of mailadmin
ADMIN_PASSWORD = "alicepw"  # a throwaway cluster's test account


def migrate(cluster, name: str = "mail", **role_passwords: str) -> str:
    """`mailbook init` and `migrate apply` of database `name` on cluster, then the given
    service roles (mailreader=..., mailauth=..., mailquota=...) get those passwords;
    returns its superuser DSN."""
    cli(["init", "--dsn", cluster.dsn(), "--database", name], check=True)
    dsn = cluster.dsn(name)
    cli(["migrate", "apply", "--dsn", dsn], check=True)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for role, password in role_passwords.items():
            set_role_password(conn, role, password)
    return dsn


@contextmanager
def migrated_cluster(root: Path, durable: bool = True, settings: list[str] | None = None,
                     **role_passwords: str) -> Iterator[PrivateCluster]:
    """A private PostgreSQL in root with a migrated `mail` database (see migrate());
    destroyed afterwards, also when a step of the setup failed."""
    pg = PrivateCluster(root, durable=durable, settings=settings)
    try:
        pg.start()
        migrate(pg, "mail", **role_passwords)
        yield pg
    finally:
        pg.destroy()


@contextmanager
def mail_database(cluster, name: str, **role_passwords: str) -> Iterator[str]:
    """A migrated mail database `name` on the session's cluster, the given service roles
    (mailreader=..., mailauth=..., mailquota=...) with those passwords; yields its superuser DSN. Drops
    it afterwards and takes the passwords back: roles are the whole cluster's."""
    try:
        yield migrate(cluster, name, **role_passwords)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in role_passwords:
                conn.execute(f"ALTER ROLE {role} PASSWORD NULL")


def sql(dsn: str, statement: str, *params) -> list:
    """statement as mailadmin (the provisioning role) on dsn; its rows, if any."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def table_checksums(conn: psycopg.Connection) -> dict[str, int]:
    """A checksum of every table's contents, to prove a failure changed nothing."""
    role = conn.execute("SELECT current_user").fetchone()[0]
    conn.execute("RESET ROLE")  # read every column, password hashes included
    out = {}
    for (table,) in conn.execute(
        "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind = 'r' ORDER BY 1"
    ):
        rows = conn.execute(f"SELECT * FROM public.{table} ORDER BY 1").fetchall()
        out[table] = zlib.crc32(repr(rows).encode())
    conn.execute(f'SET ROLE "{role}"')
    return out


def verified(conn: psycopg.Connection, email: str, password: str) -> bool:
    """verify_password() as the DBA would call it (mailowner): it is no longer granted to
    mailadmin, for whom it was a password oracle. conn's role is restored afterwards."""
    role = conn.execute("SELECT current_user").fetchone()[0]
    conn.execute("SET ROLE mailowner")
    try:
        return conn.execute("SELECT public.verify_password(%s, %s)", (email, password)).fetchone()[0]
    finally:
        conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))

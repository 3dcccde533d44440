"""Test fixtures: one private PostgreSQL cluster for the whole run, real everything.

- `cluster`: the server, started as the unprivileged `postgres` OS user when we are root
  (PostgreSQL refuses root), on a Unix socket in a private directory and a loopback port.
- `db`: pytest-postgresql's client fixture: a fresh database per test, cloned from a
  template that `mailbook migrate apply` built once. A psycopg connection as superuser.
- `mail_dsn`: the `mail` database made by `mailbook init` + `migrate apply` exactly as a
  DBA would; database-level privileges (CONNECT, TEMP, ownership) are only real there,
  since a cloned database does not inherit them.

Under CI a missing program fails the run; nothing here skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import psycopg
import psycopg.sql
import pytest
from pytest_postgresql import factories
from typer.testing import CliRunner

from mailbook import data_dir
from mailbook.database import migrations as mig
from mailbook.demo.cluster import PrivateCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
PG_ROOT = Path(tempfile.mkdtemp(prefix="mailbook-test-pg-"))
PG_PORT = free_port()
ADMIN_LOGIN = "alice"  # a DBA/front-end account, member of mailadmin
ADMIN_PASSWORD = "alicepw"  # a throwaway cluster's test account


def _load_schema(host, port, user, dbname, password=None, **_):
    """pytest-postgresql loader: migrate the template database once per run."""
    with psycopg.connect(host=host, port=port, user=user, dbname=dbname, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" OWNER TO mailowner')  # as `mailbook init` makes it
        mig.apply(conn)


mail_server = factories.postgresql_noproc(
    host=str(PG_ROOT), port=PG_PORT, user="postgres", dbname="mailbook_test", load=[_load_schema]
)
_db = factories.postgresql("mail_server")


@pytest.fixture(scope="session", autouse=True)
def cluster():
    c = PrivateCluster(PG_ROOT, port=PG_PORT, durable=False)
    c.start()
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        conn.execute((data_dir("sql") / "roles.sql").read_text())
        conn.execute(f"CREATE ROLE {ADMIN_LOGIN} LOGIN PASSWORD '{ADMIN_PASSWORD}';"
                     f" GRANT mailadmin TO {ADMIN_LOGIN}")
    yield c
    c.destroy()


@pytest.fixture
def db(_db) -> psycopg.Connection:
    """A migrated database of our own, as superuser, autocommit."""
    _db.autocommit = True
    # a clone belongs to whoever created it; mailowner must own it, as `mailbook init` makes it
    _db.execute(psycopg.sql.SQL("ALTER DATABASE {} OWNER TO mailowner").format(
        psycopg.sql.Identifier(_db.info.dbname)))
    return _db


@pytest.fixture
def admin(db) -> psycopg.Connection:
    """The same database, acting as a member of mailadmin (what psql users and front-ends are)."""
    db.execute(f"SET ROLE {ADMIN_LOGIN}")
    return db


@pytest.fixture(scope="session")
def mail_dsn(cluster) -> str:
    cli(["init", "--dsn", cluster.dsn()], check=True)
    dsn = cluster.dsn("mail")
    cli(["migrate", "apply", "--dsn", dsn], check=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # pgTAP in a schema of its own, granted back explicitly: our hardening takes
        # everything from PUBLIC, and the tests call pgTAP under SET ROLE
        conn.execute("CREATE SCHEMA IF NOT EXISTS tap; CREATE EXTENSION IF NOT EXISTS pgtap SCHEMA tap;"
                     "GRANT USAGE ON SCHEMA tap TO PUBLIC")
    return dsn


@pytest.fixture
def fresh_db(cluster, request) -> str:
    """An empty database owned by mailowner, for migration tests; dropped afterwards."""
    name = "t_" + request.node.name.lower()[:40].replace("[", "_").replace("]", "").replace("-", "_")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER mailowner')
    yield cluster.dsn(name)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str):
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def __repr__(self):
        return f"<exit {self.exit_code}\nstdout: {self.stdout}\nstderr: {self.stderr}>"


def cli(args: list[str], input: str | None = None, env: dict | None = None, check: bool = False) -> Result:
    """Run `mailbook ARGS` in-process, as Typer's CliRunner does."""
    from runner import app

    runner = CliRunner()
    r = runner.invoke(app, args, input=input, env=env, catch_exceptions=False)
    result = Result(r.exit_code, r.stdout, r.stderr)
    if check:
        assert r.exit_code == 0, result
    return result


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


def require_program(name: str) -> str:
    """The path of a program the tests need; fails (never skips) when it is missing."""
    path = shutil.which(name) or (name if os.path.exists(name) else None)
    if not path:
        pytest.fail(f"{name} is not installed; run the test command from the README (scripts/test.sh)")
    return path


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


PYTHON = sys.executable


def keep_generated(path: Path, live: str, regenerate: str, start: str | None = None, end: str | None = None) -> None:
    """A generated part of a committed file (the whole file, or what lies between the
    marker lines start and end) must equal what the code prints now (live). After an
    intended change, MAILBOOK_WRITE_EXPECTED=1 writes live in; regenerate names the test
    to run so, for the failure message."""
    text = path.read_text()
    head, tail = "", ""
    if start is not None:
        head, mark, rest = text.partition(start)
        assert mark, f"{path.name} lost its marker line {start!r}"
        head += mark
        text, mark, tail = rest.partition(end) if end is not None else (rest, "", "")
        assert end is None or mark, f"{path.name} lost its marker line {end!r}"
        tail = mark + tail
    if os.environ.get("MAILBOOK_WRITE_EXPECTED") == "1":
        path.write_text(head + live + tail)
        text = live
    assert text == live, (f"{path.relative_to(ROOT)} is out of date: regenerate it with"
                          f" MAILBOOK_WRITE_EXPECTED=1 .venv/bin/python -m pytest -q {regenerate}")


def verified(conn: psycopg.Connection, email: str, password: str) -> bool:
    """verify_password() as the DBA would call it (mailowner): it is no longer granted to
    mailadmin, for whom it was a password oracle. conn's role is restored afterwards."""
    role = conn.execute("SELECT current_user").fetchone()[0]
    conn.execute("SET ROLE mailowner")
    try:
        return conn.execute("SELECT public.verify_password(%s, %s)", (email, password)).fetchone()[0]
    finally:
        conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))

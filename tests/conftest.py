"""Test fixtures: one private PostgreSQL cluster for the whole run, real everything.

- `cluster`: the server, started as the unprivileged `postgres` OS user when we are root
  (PostgreSQL refuses root), on a Unix socket in a private directory and a loopback port.
- `db`: pytest-postgresql's client fixture: a fresh database per test, cloned from a
  template that `mailbook migrate apply` built once. A psycopg connection as superuser.
- `mail_dsn`: the `mail` database made by `mailbook init` + `migrate apply` exactly as a
  DBA would; database-level privileges (CONNECT, TEMP, ownership) are only real there,
  since a cloned database does not inherit them.

Under CI a missing program fails the run; nothing here skips. Fixtures only: the daemons,
the data and the helpers the tests share are in tests/harness/ (docs/contributing.md).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import psycopg
import psycopg.sql
import pytest
from pytest_postgresql import factories

from mailbook import data_dir
from mailbook.database import migrations as mig
from mailbook.demo.cluster import PrivateCluster, free_port
from tests.harness import benchsmoke, debian13, guide
from tests.harness.database import ADMIN_LOGIN, ADMIN_PASSWORD, migrate

PG_ROOT = Path(tempfile.mkdtemp(prefix="mailbook-test-pg-"))
PG_PORT = free_port()


def _load_schema(host, port, user, dbname, password=None, **_):
    """pytest-postgresql loader: migrate the template database once per run."""
    with psycopg.connect(host=host, port=port, user=user, dbname=dbname, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" OWNER TO mailowner')  # as `mailbook init` makes it
        mig.apply(conn)


mail_server = factories.postgresql_noproc(
    host=str(PG_ROOT), port=PG_PORT, user="postgres", dbname="mailbook_test", load=[_load_schema]
)
_db = factories.postgresql("mail_server")


@pytest.hookimpl(trylast=True)  # after -k/-m deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    """tests/test_debian13.py's checks go last, and the Debian 13 run they read starts now,
    beside the rest of the suite; so do tests/test_admin_guide_wiring.py's and its runs,
    and the benchmark smoke runs (tests/test_benchmark_smoke.py), before them."""
    smoke = {item: benchsmoke.module_of(item.name) for item in items
             if item.nodeid.startswith("tests/test_benchmark_smoke.py::")}
    smoke = {item: module for item, module in smoke.items() if module}
    if smoke:
        items[:] = [item for item in items if item not in smoke] + list(smoke)
    if smoke and not config.option.collectonly:
        benchsmoke.start(sorted(set(smoke.values())))
    later = [item for item in items if item.nodeid.startswith("tests/test_debian13.py")]
    if later:
        items[:] = [item for item in items if item not in later] + later
        debian13.start()
    # the admin guide on fresh Debian 12 and 13 roots, the same way
    wiring = [item for item in items if "guide_runs" in getattr(item, "fixturenames", ())]
    if wiring:
        items[:] = [item for item in items if item not in wiring] + wiring
        guide.start()


def pytest_sessionfinish(session, exitstatus):
    benchsmoke.stop()
    debian13.stop()
    guide.stop()


@pytest.fixture(scope="session", autouse=True)
def cluster():
    c = PrivateCluster(PG_ROOT, port=PG_PORT, durable=False)
    try:
        c.start()
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            conn.execute((data_dir("sql") / "roles.sql").read_text())
            conn.execute(f"CREATE ROLE {ADMIN_LOGIN} LOGIN PASSWORD '{ADMIN_PASSWORD}';"
                         f" GRANT mailadmin TO {ADMIN_LOGIN}")
        yield c
    finally:
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
    dsn = migrate(cluster)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # pgTAP in a schema of its own, granted back explicitly: our hardening takes
        # everything from PUBLIC, and the tests call pgTAP under SET ROLE
        conn.execute("CREATE SCHEMA IF NOT EXISTS tap; CREATE EXTENSION IF NOT EXISTS pgtap SCHEMA tap;"
                     "GRANT USAGE ON SCHEMA tap TO PUBLIC")
    return dsn


@pytest.fixture
def fresh_db(cluster, request) -> str:
    """An empty database owned by mailowner, for migration tests; dropped afterwards."""
    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower()[:40])  # a test id may hold spaces
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER mailowner')
    yield cluster.dsn(name)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

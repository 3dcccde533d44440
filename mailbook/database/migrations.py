"""Applying mailbook's migrations and SQL API to a database, with yoyo-migrations.

One libpq connection does everything, as role mailowner, so every object (yoyo's own
tables included) is owned by it. A session-level advisory lock serialises concurrent
runs; unlike yoyo's lock row it vanishes with the session, so a killed run never leaves
a lock behind. Each run is one transaction: the pending migrations, their records in
yoyo's table and the refreshed API commit together or not at all.
"""

from __future__ import annotations

import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri

from mailbook import Failure, data_dir

OWNER = "mailowner"
# pg_advisory_lock key: the bytes "mailbook" as a bigint
LOCK_KEY = int.from_bytes(b"mailbook", "big") & 0x7FFFFFFFFFFFFFFF


class _Backend(PostgresqlPsycopgBackend):
    """yoyo's psycopg backend on a connection we opened, acting as mailowner."""

    def __init__(self, conn: psycopg.Connection):
        self._shared = conn
        super().__init__(parse_uri("postgresql+psycopg:///mailbook"), "_yoyo_migration")

    def connect(self, dburi):
        return self._shared

    def init_connection(self, connection):
        # also called after every rollback, which would undo a SET ROLE made inside it
        connection.execute(f"SET ROLE {OWNER}")

    def copy(self):
        return _Borrowed(self)

    @contextmanager
    def lock(self, timeout=10):
        # the caller holds the advisory lock; yoyo's lock row is never written
        yield

    def apply_one(self, migration, force=False, mark=True):
        # yoyo commits the migration and then records it in a second transaction;
        # here both happen in one, so a crash cannot leave it applied but unrecorded
        with self.transaction():
            migration.process_steps(self, "apply", force=force)
            if mark:
                self.mark_one(migration, log=False)
            self.log_migration(migration, "apply")

    def rollback_one(self, migration, force=False):
        with self.transaction():
            migration.process_steps(self, "rollback", force=force)
            self.unmark_one(migration, log=False)
            self.log_migration(migration, "rollback")


class _Borrowed:
    """What yoyo's copy() hands out: the same backend, not closed on exit."""

    def __init__(self, backend):
        self._backend = backend

    def __enter__(self):
        return self._backend

    def __exit__(self, *exc):
        return None


@dataclass
class MigrationState:
    id: str
    applied: bool
    applied_at: str | None


def _sql(name: str) -> str:
    return (data_dir("sql") / name).read_text()


def _api_files() -> list[Path]:
    return sorted((data_dir("sql") / "api").glob("*.sql"))


@contextmanager
def _migration_session(conn: psycopg.Connection):
    """Advisory lock, mailowner role and a yoyo backend on conn."""
    member = conn.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
        (OWNER,),
    ).fetchone()
    if member is None:
        raise Failure(
            f"role {OWNER} does not exist in this cluster; run `mailbook init` as a superuser first"
        )
    if not member[0]:
        user = conn.execute("SELECT current_user").fetchone()[0]
        raise Failure(
            f"role {user} may not act as {OWNER}; connect as a superuser or GRANT {OWNER} TO {user}"
        )
    _take_lock(conn)
    try:
        held = None
        if conn.execute("SELECT to_regclass('public.yoyo_lock')").fetchone()[0]:
            held = conn.execute("SELECT pid, ctime FROM public.yoyo_lock").fetchone()
        if held:
            pid, since = held
            raise Failure(
                f"a plain `yoyo` run (pid {pid}, since {since}) holds yoyo_lock; if it is no"
                " longer running, DELETE FROM yoyo_lock and try again"
            )
        backend = _Backend(conn)
        backend.init_database()
        backend.ensure_internal_schema_updated()
        yield backend
    finally:
        conn.execute(f"RESET ROLE; SELECT pg_advisory_unlock({LOCK_KEY})")


# who holds mailbook's advisory lock in this database, and whether that role could be
# migrating (a superuser or a member of mailowner)
_HOLDER = """
SELECT l.pid, a.usename, pg_has_role(a.usesysid, %(owner)s, 'MEMBER')
  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid::bigint = %(key)s >> 32 AND l.objid::bigint = %(key)s & 4294967295
"""


def _take_lock(conn: psycopg.Connection) -> None:
    """mailbook's advisory lock. Any role that may connect can take an advisory lock, so
    a help-desk session could hold this one and stall every upgrade: a run waits only for
    a holder that could itself be migrating, and names any other at once."""
    told = None
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
        holder = conn.execute(_HOLDER, {"owner": OWNER, "key": LOCK_KEY}).fetchone()
        if holder is None:
            continue  # released between the two queries
        pid, role, may_migrate = holder
        if not may_migrate:
            raise Failure(
                f"session {pid} (role {role}) holds mailbook's migration lock but may not migrate;"
                f" if it is not yours, end it: SELECT pg_terminate_backend({pid})"
            )
        if told != pid:
            print(f"waiting for migration run {pid} (role {role}) to finish", file=sys.stderr)
            told = pid
        time.sleep(0.2)


def _all_migrations():
    """The migrations a new database gets: the 1.0 baseline and what came after it."""
    return read_migrations(str(data_dir("migrations")))


PRE_1_0 = "pre-1.0"
BASELINE = ("0100", "0200")  # the 1.0 baseline's ids; later migrations are 0200 and up


def pre_baseline_migrations():
    """The chain that led to 1.0 (migrations/pre-1.0/): read only to bring a database
    built by it to its end before it moves onto the baseline; never applied to a new one."""
    return read_migrations(str(data_dir("migrations") / PRE_1_0))


def _applied_ids(conn: psycopg.Connection) -> set[str]:
    if not conn.execute("SELECT to_regclass('public._yoyo_migration')").fetchone()[0]:
        return set()
    return {r[0] for r in conn.execute("SELECT migration_id FROM public._yoyo_migration")}


def status(conn: psycopg.Connection) -> list[MigrationState]:
    """Every migration and whether it is applied. Reads only: takes no lock, creates nothing."""
    applied_at = {}
    if conn.execute("SELECT to_regclass('public._yoyo_migration')").fetchone()[0]:
        applied_at = dict(
            conn.execute(
                "SELECT migration_hash, to_char(applied_at_utc, 'YYYY-MM-DD HH24:MI:SS') || ' UTC'"
                " FROM public._yoyo_migration"
            ).fetchall()
        )
    return [
        MigrationState(m.id, m.hash in applied_at, applied_at.get(m.hash))
        for m in _all_migrations()
    ]


@dataclass(frozen=True)
class Pending:
    ids: list[str]     # what `migrate apply` would run
    old_chain: bool    # the database was built by the pre-1.0 chain and is not moved yet


def pending(conn: psycopg.Connection) -> Pending:
    """What `migrate apply` would run. Reads only. For a database on the pre-1.0 chain:
    that chain's remaining steps and what follows the baseline; the baseline itself is
    then recorded, not run, so at the chain's end the schema is already the baseline's."""
    applied = _applied_ids(conn)
    old_chain = [m.id for m in pre_baseline_migrations()]
    on_old_chain = bool(applied & set(old_chain))
    ids = [m.id for m in _all_migrations() if m.id not in applied
           and not (on_old_chain and BASELINE[0] <= m.id < BASELINE[1])]
    if on_old_chain:
        ids = [m for m in old_chain if m not in applied] + ids
    return Pending(ids, on_old_chain)


@dataclass(frozen=True)
class SchemaVersion:
    latest: str | None     # the newest applied migration this package knows
    unknown: list[str]     # applied migrations this package does not know: the database is newer


def schema_version(conn: psycopg.Connection) -> SchemaVersion:
    """Which schema a database is at, as this package sees it. Reads only."""
    # a database still on the pre-1.0 chain is older, not newer: `migrate apply` moves it
    known = [m.id for m in pre_baseline_migrations()] + [m.id for m in _all_migrations()]
    applied = _applied_ids(conn)
    latest = next((m for m in reversed(known) if m in applied), None)
    return SchemaVersion(latest, sorted(applied - set(known)))


class Applied(list):
    """The ids of the migrations applied; `old` the pre-1.0 steps applied first, and
    `moved` whether the database was moved onto the 1.0 baseline in this run."""

    def __init__(self, ids=(), old=(), moved=False):
        super().__init__(ids)
        self.old, self.moved = list(old), moved


def apply(conn: psycopg.Connection) -> Applied:
    """Apply pending migrations and re-create the API; returns the ids applied.

    A database built by the pre-1.0 chain (its log names those ids) is first brought to
    that chain's end, then moved onto the baseline: the baseline's migrations are recorded
    as applied without running them (their objects are exactly what the old chain built;
    tests/test_baseline.py compares the two with pg_dump) and the old records go. All of
    it, and what comes after the baseline, in one transaction."""
    with _migration_session(conn) as backend:
        old_chain = pre_baseline_migrations()
        on_old_chain = bool(_applied_ids(conn) & {m.id for m in old_chain})
        with backend.transaction():
            old = backend.to_apply(old_chain) if on_old_chain else []
            for m in old:
                _run(backend, m, "apply")
            if on_old_chain:
                _move_onto_baseline(backend, old_chain)
            pending = backend.to_apply(_all_migrations())
            for m in pending:
                _run(backend, m, "apply")
            _refresh_api(conn)
        return Applied([m.id for m in pending], [m.id for m in old], on_old_chain)


def _move_onto_baseline(backend: _Backend, old_chain) -> None:
    """Record the baseline as applied (yoyo's "mark", logged as such) and forget the
    pre-1.0 records. Nothing in the schema is touched."""
    baseline = [m for m in _all_migrations() if BASELINE[0] <= m.id < BASELINE[1]]
    applied = set(backend.get_applied_migration_hashes())
    for m in baseline:
        if m.hash not in applied:
            backend.mark_one(m, log=True)
    for m in old_chain:
        backend.unmark_one(m, log=False)


def rollback(conn: psycopg.Connection, count: int) -> list[str]:
    """Drop the API and roll back the newest `count` migrations; returns their ids."""
    with _migration_session(conn) as backend:
        chosen = list(backend.to_rollback(_all_migrations()))[:count]
        with backend.transaction():
            if chosen:
                conn.execute(_sql("drop_api.sql"))
            for m in chosen:
                _run(backend, m, "rollback")
        return [m.id for m in chosen]


def _run(backend: _Backend, migration, direction: str) -> None:
    try:
        getattr(backend, f"{direction}_one")(migration)
    except psycopg.Error as exc:
        raise MigrationFailed(migration.id, direction, exc) from exc


def _refresh_api(conn: psycopg.Connection) -> None:
    conn.execute(_sql("drop_api.sql"))
    for path in _api_files():
        text = path.read_text()
        try:
            conn.execute(text)
            for name, doc in function_headers(text):
                # the comment block above each function becomes its catalogue comment, so
                # psql's \df+ says what the file says (one text, never two to keep in step)
                for (oid,) in conn.execute("SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p"
                                           " WHERE p.pronamespace = 'public'::regnamespace AND p.proname = %s",
                                           (name,)).fetchall():
                    conn.execute(f"COMMENT ON FUNCTION {oid} IS {_literal(conn, doc)}")
        except psycopg.Error as exc:
            raise MigrationFailed(f"sql/api/{path.name}", "apply", exc) from exc


def function_headers(sql: str) -> list[tuple[str, str]]:
    """(function name, its header comment without the dashes) for each CREATE FUNCTION
    in an sql/api file: the comment lines directly above it."""
    lines, out = sql.splitlines(), []
    for i, line in enumerate(lines):
        m = re.match(r"CREATE (?:OR REPLACE )?FUNCTION public\.(\w+)\(", line)
        if not m:
            continue
        j = i
        while j > 0 and lines[j - 1].startswith("--"):
            j -= 1
        out.append((m.group(1), "\n".join(l[2:].removeprefix(" ") for l in lines[j:i])))
    return out


def _literal(conn: psycopg.Connection, text: str) -> str:
    return sql.Literal(text).as_string(conn)


class MigrationFailed(Failure):
    def __init__(self, name: str, direction: str, exc: psycopg.Error):
        self.name, self.direction, self.exc = name, direction, exc
        verb = "applying" if direction == "apply" else "rolling back"
        super().__init__(f"{verb} {name} failed, nothing was changed")

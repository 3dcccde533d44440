"""The 1.0 baseline (migrations/01xx_baseline_*) builds exactly what the pre-1.0 chain
(migrations/pre-1.0/) built, and a database built by that chain, whole or in part, moves
onto the baseline through one `mailbook migrate apply` without any change to its objects
or its rows."""

from __future__ import annotations

import json

import psycopg
import pytest
from yoyo import read_migrations

from mailbook import data_dir
from mailbook.database import migrations as mig
from mailbook.demo.cluster import SUPERUSER
from tests.harness.process import cli, run

ALL_IDS = sorted(p.name[: -len(".sql")] for p in data_dir("migrations").glob("*.sql")
                 if not p.name.endswith(".rollback.sql"))
BASELINE_IDS = [m for m in ALL_IDS if "0100" <= m < "0200"]
LATER_IDS = [m for m in ALL_IDS if m >= "0200"]  # after 1.0: they run on a moved database too
MOVED_BY_LATER = {"password_failures"}  # 0200 moves its rows into password_attempts
PRE_1_0_IDS = sorted(p.name[: -len(".sql")] for p in (data_dir("migrations") / "pre-1.0").glob("*.sql")
                     if not p.name.endswith(".rollback.sql"))


def build_with_old_chain(dsn: str, upto: str | None = None) -> None:
    """What `mailbook migrate apply` did before 1.0: yoyo over the pre-1.0 chain, then the
    SQL API re-created, in one transaction. With `upto`, only the chain up to that step
    and no API (today's API needs the whole chain; that release's is gone anyway)."""
    with psycopg.connect(dsn, autocommit=True) as conn, mig._migration_session(conn) as backend:
        chain = read_migrations(str(data_dir("migrations") / "pre-1.0"))
        with backend.transaction():
            for m in backend.to_apply(chain):
                if upto is None or m.id <= upto:
                    mig._run(backend, m, "apply")
            if upto is None:
                # today's API, standing in for that release's: its SQL-language functions
                # may name tables of later migrations (0200 and up), so bodies are not
                # checked now, as pg_restore does; migrate apply re-creates them checked
                conn.execute("SET check_function_bodies = off")
                mig._refresh_api(conn)
                conn.execute("RESET check_function_bodies")


def schema_dump(cluster, dsn: str) -> str:
    """pg_dump --schema-only --create (comments, grants, the database's own ACL), with the
    database's name and pg_dump's random \\restrict key taken out."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    out = run([str(cluster.bindir / "pg_dump"), "--schema-only", "--create", "-h", cluster.host,
               "-p", str(cluster.port), "-U", SUPERUSER, dbname], check=True).stdout
    return "\n".join(line.replace(dbname, "DBNAME") for line in out.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def applied_ids(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1")]


def doctor(dsn: str) -> dict:
    return {c["check"]: c for c in json.loads(cli(["doctor", "--json", "--dsn", dsn]).stdout)}


def every_row(dsn: str, columns: dict[str, list[str]] | None = None) -> dict[str, list]:
    """Every row of every mail table, as the superuser reads it (hashes included). With
    columns (table -> names, from columns_of()), those tables and columns only: what a
    database held before later migrations added columns (0208, 0212) must be kept."""
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            " AND relname NOT LIKE '%yoyo%' ORDER BY 1")]
        if columns is not None:
            tables = [t for t in tables if t in columns]
        return {t: sorted(conn.execute(
                    "SELECT " + (", ".join(f'"{c}"' for c in columns[t]) if columns else "*") + f" FROM public.{t}"
                ).fetchall(), key=repr) for t in tables}


def columns_of(dsn: str) -> dict[str, list[str]]:
    """Each mail table's columns, in order."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                            " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0"
                            " AND NOT a.attisdropped AND c.relname NOT LIKE '%yoyo%' ORDER BY c.relname, a.attnum")
        out: dict[str, list[str]] = {}
        for table, column in rows:
            out.setdefault(table, []).append(column)
        return out


@pytest.fixture(scope="module")
def baseline_dump(cluster):
    """The schema of a new database: `mailbook migrate apply` on an empty one."""
    name = "t_baseline_reference"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" OWNER mailowner')
    dsn = cluster.dsn(name)
    r = cli(["migrate", "apply", "--dsn", dsn], check=True)
    assert [l.split()[-1] for l in r.stdout.splitlines() if l.startswith("applied")] == ALL_IDS
    assert doctor(dsn)["catalogue"]["status"] == "pass"
    yield schema_dump(cluster, dsn)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_baseline_is_one_migration_per_concern_after_the_old_ids():
    assert [m.split("_", 1)[0] for m in BASELINE_IDS] == [f"{n:04}" for n in range(100, 100 + len(BASELINE_IDS))]
    assert all("_baseline_" in m for m in BASELINE_IDS)
    assert max(PRE_1_0_IDS) < min(BASELINE_IDS) and set(ALL_IDS) == set(BASELINE_IDS) | set(LATER_IDS)
    # every migration-owned table, view and function is created in one baseline file,
    # with its comment next to it
    for mid in BASELINE_IDS:
        text = (data_dir("migrations") / f"{mid}.sql").read_text()
        assert "CREATE OR REPLACE" not in text and "ALTER TABLE public.users ADD" not in text, mid


def test_the_old_chain_and_the_baseline_build_the_same_schema(cluster, fresh_db, baseline_dump):
    """The move records the baseline without running it, and what came after 1.0 (0200
    and up) then runs on both alike: equal dumps mean the old chain's end is the baseline."""
    build_with_old_chain(fresh_db)
    assert applied_ids(fresh_db) == PRE_1_0_IDS
    checks = doctor(fresh_db)
    assert checks["migrations"]["status"] == "warn" and "move it onto the 1.0 baseline" in checks["migrations"]["detail"]
    r = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert r.stdout.splitlines()[0] == "moved onto the 1.0 baseline: the schema is unchanged", r
    moved = schema_dump(cluster, fresh_db)
    assert "COMMENT ON TABLE public.users" in moved and "GRANT CONNECT ON DATABASE DBNAME TO mailadmin" in moved
    assert moved == baseline_dump
    assert doctor(fresh_db)["catalogue"]["status"] == "pass"


def _fill_every_table(dsn: str) -> None:
    """Rows in every mail table, by the roles that write them in production."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_domain('relay.example', 'smtp:[mx.relay.example]')")
        conn.execute("SELECT add_alias_domain('example.net', 'example.com')")
        conn.execute("SELECT add_mailbox('boss@example.com', 'a fine long password')")
        conn.execute("SELECT add_mailbox('foo@example.com', 'another long password')")
        conn.execute("SELECT add_mailbox('gone@example.com', 'a third long password')")
        conn.execute("SELECT remove_mailbox('gone@example.com')")  # its maildir is queued
        conn.execute("SELECT add_alias('info@example.com', 'boss@example.com')")
        conn.execute("SELECT add_alias('@example.com', 'foo@example.com')")
        conn.execute("SELECT allow_send_as('foo@example.com', 'info@example.com')")
        conn.execute("SELECT set_mailbox_service('foo@example.com', 'pop3', false)")
        conn.execute("SELECT set_domain_limits('example.com', 10, 10, NULL)")
        conn.execute("SELECT set_vacation('boss@example.com', 'Away', 'Back on Monday.')")
        conn.execute("SET ROLE mailquota")  # as Dovecot's quota_clone writes
        conn.execute("INSERT INTO quota_usage (bytes, messages, email) VALUES (2048, 3, 'boss@example.com')")
        conn.execute("RESET ROLE; SET ROLE mailowner")
        # a wrong current password, as 1.0's change_password() recorded it
        conn.execute("INSERT INTO password_failures VALUES ('foo@example.com', ARRAY[now()])")
        conn.execute("UPDATE settings SET bcrypt_cost = 11")
        conn.execute("INSERT INTO maildir_roots VALUES ('example.com') ON CONFLICT DO NOTHING")


def test_old_chain_onto_baseline(
        cluster, fresh_db, baseline_dump):
    """A database built by the old chain moves onto the baseline keeping every row."""
    build_with_old_chain(fresh_db)
    _fill_every_table(fresh_db)
    before = every_row(fresh_db)
    assert all(before[t] for t in before if t != "import_staging"), {t: len(r) for t, r in before.items()}
    kept = {t: c for t, c in columns_of(fresh_db).items() if t not in MOVED_BY_LATER}

    r = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert r.stdout.splitlines() == ["moved onto the 1.0 baseline: the schema is unchanged",
                                     *(f"applied {m}" for m in LATER_IDS),
                                     "database is up to date; SQL API refreshed"], r
    moved = every_row(fresh_db, kept)
    assert moved == {t: rows for t, rows in before.items() if t not in MOVED_BY_LATER}  # audit log too: nothing new
    attempts = every_row(fresh_db)["password_attempts"]  # 0200 moved 1.0's failures
    assert [(a[1], a[2], a[3]) for a in attempts] == [("foo@example.com", before["password_failures"][0][1][0], False)]
    assert schema_dump(cluster, fresh_db) == baseline_dump
    assert applied_ids(fresh_db) == ALL_IDS
    status = cli(["migrate", "status", "--dsn", fresh_db], check=True)
    assert f"{len(ALL_IDS)} applied, 0 pending" in status.stdout and status.stderr == ""
    checks = doctor(fresh_db)
    assert checks["catalogue"]["status"] == "pass" and checks["migrations"]["status"] == "pass", checks
    assert checks["version"]["status"] == "pass", checks["version"]
    again = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert again.stdout == "no pending migrations; SQL API refreshed\n"
    assert every_row(fresh_db, kept) == moved
    assert applied_ids(fresh_db) == ALL_IDS


def test_part_way_chain_onto_baseline(
        cluster, fresh_db, baseline_dump):
    """A database part way along the old chain finishes it then moves in one apply."""
    build_with_old_chain(fresh_db, upto="0030_move_pgcrypto_out_of_public")
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # the owner's DML, as that release allowed
        conn.execute("SET ROLE mailowner")
        conn.execute("INSERT INTO transports (domain) VALUES ('example.com')")
        conn.execute("INSERT INTO users (email, password, maildir) VALUES ('foo@example.com', %s, 'example.com/foo/')",
                     ("{BLF-CRYPT}$2y$10$" + "a" * 53,))
    before = every_row(fresh_db)
    kept = columns_of(fresh_db)
    r = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    rest = [m for m in PRE_1_0_IDS if m > "0030_move_pgcrypto_out_of_public"]
    assert r.stdout.splitlines() == [f"applied pre-1.0/{m}" for m in rest] + [
        "moved onto the 1.0 baseline: the schema is unchanged", *(f"applied {m}" for m in LATER_IDS),
        "database is up to date; SQL API refreshed"]
    assert schema_dump(cluster, fresh_db) == baseline_dump
    assert applied_ids(fresh_db) == ALL_IDS
    after = every_row(fresh_db, kept)
    assert after["users"] == before["users"] and after["transports"] == before["transports"]


def test_a_failing_old_step_leaves_the_database_where_it_was(cluster, fresh_db):
    """The old steps, the move and the API are one transaction: a refusal on the way
    changes nothing (here 0050 needs the role mailwebmail, which a cluster may lack)."""
    build_with_old_chain(fresh_db, upto="0041_probe_parent_maildirs_by_index")
    before = applied_ids(fresh_db)
    dump = schema_dump(cluster, fresh_db)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        blocker = "ALTER TABLE public.settings ADD COLUMN password_min_length integer"
        conn.execute(f"SET ROLE mailowner; {blocker}; RESET ROLE")  # 0050 adds it again: fails
    r = cli(["migrate", "apply", "--dsn", fresh_db])
    assert r.exit_code == 1 and "0050_create_password_self_service" in r.stderr, r
    assert applied_ids(fresh_db) == before
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.settings DROP COLUMN password_min_length")
    assert schema_dump(cluster, fresh_db) == dump

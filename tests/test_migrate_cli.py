"""`mailbook init` and `mailbook migrate ...` against real databases."""

from __future__ import annotations

import json
import shutil
import subprocess

import psycopg
import pytest
from yoyo import read_migrations

from mailbook.database import migrations as mig
from mailbook.demo.cluster import SUPERUSER
from tests.harness.process import PYTHON, ROOT, cli, run

MIGRATION_IDS = sorted(p.name[: -len(".sql")] for p in (ROOT / "migrations").glob("*.sql")
                       if not p.name.endswith(".rollback.sql"))


def schema_dump(cluster, dsn: str) -> str:
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    pg_dump = str(cluster.bindir / "pg_dump")
    out = run([pg_dump, "--schema-only", "--no-comments", "-h", cluster.host, "-p", str(cluster.port),
               "-U", SUPERUSER, dbname], check=True)
    # newer pg_dump releases print a random \restrict key; yoyo's tables hold run data
    return "\n".join(line for line in out.stdout.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def applied_ids(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1")]


def test_every_migration_has_a_rollback_twin_and_a_why_comment():
    for mid in MIGRATION_IDS:
        forward = ROOT / "migrations" / f"{mid}.sql"
        assert (ROOT / "migrations" / f"{mid}.rollback.sql").is_file(), mid
        assert forward.read_text().startswith("-- "), f"{mid} should open with a comment saying why"
        assert "BEGIN;" not in forward.read_text() and "COMMIT;" not in forward.read_text(), mid


def test_init_idempotent(cluster):
    """Init creates roles and database owned by mailowner and is idempotent."""
    first = cli(["init", "--dsn", cluster.dsn(), "--database", "init_test"], check=True)
    assert "created database init_test owned by mailowner" in first.stdout
    again = cli(["init", "--dsn", cluster.dsn(), "--database", "init_test"], check=True)
    assert "already exists" in again.stdout and "created" not in again.stdout
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'init_test'").fetchone()
        assert owner == ("mailowner",)
        roles = dict(conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'mail%'").fetchall())
        assert roles == {"mailowner": False, "mailadmin": False, "maildomainadmin": False, "mailreader": True, "mailauth": True,
                         "mailquota": True, "mailwebmail": True, "maildkim": True}
        assert conn.execute("SELECT count(*) FROM pg_authid WHERE rolname LIKE 'mail%' AND rolpassword IS NOT NULL").fetchone() == (0,)
        conn.execute("DROP DATABASE init_test")


def test_init_refuses_a_database_owned_by_someone_else(cluster):
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE not_ours")
    r = cli(["init", "--dsn", cluster.dsn(), "--database", "not_ours"])
    assert r.exit_code == 1
    assert 'database "not_ours" exists and is owned by postgres' in r.stderr
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE not_ours")


def test_init_needs_a_superuser(cluster, mail_dsn):
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'plainpw'")
    r = cli(["init", "--dsn", f"host=127.0.0.1 port={cluster.port} dbname=mail user=plain"],
            env={"PGPASSWORD": "plainpw"})
    assert r.exit_code == 1
    assert "connect as a superuser" in r.stderr or "permission denied" in r.stderr


def test_migrate_apply_then_reapply_is_a_noop(fresh_db):
    first = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert [l.split()[-1] for l in first.stdout.splitlines() if l.startswith("applied")] == MIGRATION_IDS
    again = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert "no pending migrations" in again.stdout
    assert applied_ids(fresh_db) == MIGRATION_IDS


def test_every_object_is_owned_by_mailowner(fresh_db):
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db) as conn:
        others = conn.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
            " WHERE c.relnamespace = 'public'::regnamespace AND pg_get_userbyid(c.relowner) <> 'mailowner'"
            " UNION ALL SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p"
            " WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> 'mailowner'"
            "   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
        ).fetchall()
    assert others == []


def test_status_lists_pending_then_applied(fresh_db):
    before = cli(["migrate", "status", "--dsn", fresh_db], check=True)
    assert f"0 applied, {len(MIGRATION_IDS)} pending" in before.stdout
    with psycopg.connect(fresh_db) as conn:  # status reads only: it created nothing
        assert conn.execute("SELECT to_regclass('public._yoyo_migration')").fetchone() == (None,)
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    after = cli(["migrate", "status", "--dsn", fresh_db], check=True)
    assert f"{len(MIGRATION_IDS)} applied, 0 pending" in after.stdout
    assert all(mid in after.stdout for mid in MIGRATION_IDS)


def test_version_and_schema_are_named_and_a_newer_database_is_warned_about(fresh_db):
    import tomllib
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert cli(["--version"]).stdout == f"mailbook {version}\n"
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    r = cli(["migrate", "status", "--dsn", fresh_db], check=True)
    assert f"mailbook {version}, schema at {MIGRATION_IDS[-1]}\n" in r.stdout and r.stderr == ""
    with psycopg.connect(fresh_db, autocommit=True) as conn:  # as if a newer mailbook had migrated it
        conn.execute("INSERT INTO _yoyo_migration (migration_hash, migration_id, applied_at_utc)"
                     " VALUES ('f' || md5('x'), '9999_from_the_future', now())")
    r = cli(["migrate", "status", "--dsn", fresh_db], check=True)
    assert "9999_from_the_future" in r.stderr and "newer; upgrade mailbook" in r.stderr
    doctor = {c["check"]: c for c in json.loads(cli(["doctor", "--json", "--dsn", fresh_db]).stdout)}
    assert doctor["version"]["status"] == "warn" and "upgrade mailbook" in doctor["version"]["detail"]


def test_round_trip_apply_rollback_all_apply_gives_the_same_schema(cluster, fresh_db):
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    first = schema_dump(cluster, fresh_db)
    rolled = cli(["migrate", "rollback", "--count", str(len(MIGRATION_IDS)), "--dsn", fresh_db], check=True)
    assert rolled.stdout.count("rolled back") == len(MIGRATION_IDS)
    with psycopg.connect(fresh_db) as conn:
        left = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relname NOT LIKE '%yoyo%' UNION ALL SELECT proname FROM pg_proc"
            " WHERE pronamespace = 'public'::regnamespace").fetchall()
        assert left == []
        assert conn.execute("SELECT has_database_privilege('public', current_database(), 'CONNECT')").fetchone() == (True,)
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert schema_dump(cluster, fresh_db) == first


def test_rollback_one_removes_only_the_newest(fresh_db):
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    r = cli(["migrate", "rollback", "--dsn", fresh_db], check=True)
    assert r.stdout.strip().splitlines() == [f"rolled back {MIGRATION_IDS[-1]}"]
    assert applied_ids(fresh_db) == MIGRATION_IDS[:-1]


def test_four_concurrent_applies_apply_each_migration_once(fresh_db):
    cmd = [PYTHON, str(ROOT / "runner.py"), "migrate", "apply", "--dsn", fresh_db]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0, 0, 0, 0], results
    assert sum(r[1].count("applied 0100_baseline_hardening") for r in results) == 1
    assert applied_ids(fresh_db) == MIGRATION_IDS


def test_failing_migration_names_the_file_and_changes_nothing(fresh_db, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    (tmp_path / "migrations" / "9999_broken.sql").write_text(
        "-- a migration that fails half-way\n-- depends: 0106_baseline_mailboxes\n"
        "CREATE TABLE public.half_done (x int);\nSELECT 1/0;\n")
    (tmp_path / "migrations" / "9999_broken.rollback.sql").write_text("DROP TABLE public.half_done;\n")
    monkeypatch.setattr(mig, "_all_migrations", lambda: read_migrations(str(tmp_path / "migrations")))
    r = cli(["migrate", "apply", "--dsn", fresh_db])
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "9999_broken" in r.stderr and "division by zero" in r.stderr and "22012" in r.stderr
    with psycopg.connect(fresh_db) as conn:  # not even the good migrations before it stayed
        assert conn.execute("SELECT to_regclass('public.users'), to_regclass('public.half_done')").fetchone() == (None, None)


def test_mailbook_refuses_a_role_that_is_not_mailowner(cluster, fresh_db):
    dsn = fresh_db.replace(f"host={cluster.host}", "host=127.0.0.1").replace("user=postgres", "user=alice")
    r = cli(["migrate", "apply", "--dsn", dsn], env={"PGPASSWORD": "alicepw"})
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert r.stderr == "mailbook: role alice may not act as mailowner; connect as a superuser or GRANT mailowner TO alice\n"


# -- connection problems: one line, exit 1, no traceback ----------------------------------

@pytest.mark.parametrize(
    "dsn, words",
    [
        ("host=127.0.0.1 port=1 dbname=mail", ["cannot connect to PostgreSQL", "port 1"]),
        ("host=/nonexistent dbname=mail", ["cannot connect to PostgreSQL", "/nonexistent"]),
        ("dbname=mail sslmode=bogus", ["sslmode"]),
        ("this is = not a dsn '", ["invalid connection string", "missing"]),
    ],
)
def test_bad_dsn_or_server_down_prints_one_line(dsn, words):
    for command in (["migrate", "apply"], ["migrate", "status"], ["init"]):
        r = cli([*command, "--dsn", dsn])
        assert r.exit_code != 0
        assert "Traceback" not in r.stderr + r.stdout
        assert r.stderr.count("\n") == 1, r
        for w in words:
            assert w in r.stderr, r


def test_no_dsn_says_libpqs_defaults_were_used_and_how_to_give_one():
    env = {"MAILBOOK_DSN": "", "PGHOST": "/nonexistent", "PGPORT": "1"}
    for command in (["migrate", "status"], ["mailbox", "list"], ["doctor"]):
        r = cli(command, env=env)
        assert r.exit_code == 1 and r.stderr.count("\n") == 1, r
        assert r.stderr.startswith("mailbook: cannot connect to PostgreSQL: ") and "/nonexistent" in r.stderr, r
        assert "libpq's defaults were used" in r.stderr and "--dsn or $MAILBOOK_DSN" in r.stderr, r
        assert ".;" not in r.stderr and not r.stderr.rstrip().endswith("."), r


def test_unknown_database_names_it(cluster):
    r = cli(["migrate", "status", "--dsn", cluster.dsn("no_such_db")])
    assert r.exit_code == 1 and 'database "no_such_db" does not exist' in r.stderr


def test_password_on_the_command_line_is_refused(cluster):
    r = cli(["migrate", "status", "--dsn", cluster.dsn("mail") + " password=hunter2"])
    assert r.exit_code == 1 and "contains a password" in r.stderr and "~/.pgpass" in r.stderr


def test_dsn_from_environment_is_used(mail_dsn):
    r = cli(["migrate", "status"], env={"MAILBOOK_DSN": mail_dsn})
    assert r.exit_code == 0 and f"{len(MIGRATION_IDS)} applied" in r.stdout


def test_real_process_exit_code_and_stderr_for_a_down_server():
    r = run([PYTHON, str(ROOT / "runner.py"), "migrate", "status", "--dsn", "host=127.0.0.1 port=1"])
    assert r.returncode == 1
    assert r.stderr.startswith("mailbook: cannot connect to PostgreSQL") and r.stderr.count("\n") == 1



def test_released_migrations_are_never_edited():
    """A database migrated by an earlier release has these files applied; editing one
    would leave it different from a new database forever. Change the schema with a new
    migration, and add its checksum to tests/released-migrations.sha256 when it ships."""
    import hashlib

    listed = {}
    for line in (ROOT / "tests" / "released-migrations.sha256").read_text().splitlines():
        digest, name = line.split()
        listed[name] = digest
    current = {p.relative_to(ROOT / "migrations").as_posix() for p in (ROOT / "migrations").glob("**/*.sql")}
    assert listed.keys() <= current, "a released migration was deleted"
    for name, digest in listed.items():
        actual = hashlib.sha256((ROOT / "migrations" / name).read_bytes()).hexdigest()
        assert actual == digest, f"migrations/{name} was released and must not change; add a new migration"
    # from 1.0 on the baseline is released, and the pre-1.0 chain, which brings an older
    # database to the baseline, can never change again
    assert {f"{m}.sql" for m in MIGRATION_IDS if m < "0200"} <= listed.keys()
    assert {p for p in current if p.startswith("pre-1.0/")} <= listed.keys()


def test_apply_killed_mid_migration(fresh_db):
    """Apply killed with SIGKILL mid migration leaves the previous version and the next run
    succeeds.

    A migration is pending; a session holding a lock on what it alters makes
    `migrate apply` wait inside it; then the process is killed. Its transaction dies with
    its connection: nothing of it stays, no lock is left to break, and a new run applies."""
    import signal
    import time
    # 0108 (it adds triggers to users) is the migration the run is killed in; it and any
    # newer ones are pending again
    blocked = MIGRATION_IDS.index("0108_baseline_maildir_queue")
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    cli(["migrate", "rollback", "--count", str(len(MIGRATION_IDS) - blocked), "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db) as blocker:
        # a writer's lock on the mail tables holds any migration that alters one of them
        blocker.execute("LOCK TABLE public.transports, public.users, public.aliases,"
                        " public.settings, public.audit_log IN ROW EXCLUSIVE MODE")
        proc = subprocess.Popen([PYTHON, str(ROOT / "runner.py"), "migrate", "apply", "--dsn", fresh_db],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with psycopg.connect(fresh_db, autocommit=True) as watch:
            waiting = """SELECT pid FROM pg_stat_activity
                          WHERE datname = current_database() AND wait_event_type = 'Lock'"""
            for _ in range(200):
                stuck = watch.execute(waiting).fetchone()
                if stuck:
                    break
                time.sleep(0.05)
            assert stuck, "migrate apply never reached the locked table"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            blocker.rollback()  # let the orphaned backend go on, find its client gone, and abort
            for _ in range(200):
                if not watch.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", stuck).fetchone():
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the killed run's backend never ended")
    assert applied_ids(fresh_db) == MIGRATION_IDS[:blocked]  # the previous version, exactly
    with psycopg.connect(fresh_db) as conn:
        # what the newer migrations do is not there
        assert conn.execute("SELECT to_regclass('public.password_attempts')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('public.maildir_purge_queue'), to_regclass('public.import_staging')"
                            ).fetchone() == (None, None)
        assert conn.execute("SELECT to_regclass('public.vacations'), to_regclass('public.sieve_scripts')"
                            ).fetchone() == (None, None)
    r = cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    assert f"applied {MIGRATION_IDS[blocked]}" in r.stdout
    assert applied_ids(fresh_db) == MIGRATION_IDS


def test_rollback_refused_with_data(fresh_db):
    """Rolling back a concern is refused while it holds data and loses nothing.

    Newest first: the password attempts (0200), the change record of `maps follow` (0112),
    vacations (0111), then the password failures (0110) and the import
    staging (0109), which keep nothing worth keeping; queued maildirs (0108), aliases and
    send-as grants (0107), mailboxes (0106), domains (0105). Each refusal is one line and
    changes nothing; once the rows are gone (by the owner's DML: a rollback leaves no
    API), the migration goes."""
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_mailbox('foo@example.com', 'pw pw pw')")
        conn.execute("SELECT add_alias('@example.com', 'foo@example.com')")
        conn.execute("SELECT add_alias_domain('example.net', 'example.com')")
        conn.execute("SELECT allow_send_as('foo@example.com', 'info@example.com')")
        conn.execute("SELECT set_mailbox_service('foo@example.com', 'pop3', false)")
        conn.execute("SELECT set_domain_limits('example.com', NULL, 10, NULL)")
        conn.execute("SELECT add_mailbox('gone@example.com', 'pw pw pw')")
        conn.execute("SELECT remove_mailbox('gone@example.com')")  # its maildir is queued
        conn.execute("SELECT set_vacation('foo@example.com', 'Away', 'away')")
        with conn.transaction():  # a key pair is staged and taken in one transaction
            conn.execute("INSERT INTO dkim_key_staging (private_key, public_key) VALUES"
                         " ('-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n', repeat('A', 392))")
            conn.execute("SELECT add_dkim_key('example.com', 'mb202612', 'rsa-sha256')")
        with conn.transaction():  # a rotation under way: its next key pending
            conn.execute("INSERT INTO dkim_key_staging (private_key, public_key) VALUES"
                         " ('-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n', repeat('B', 392))")
            conn.execute("SELECT rotate_dkim_key('example.com', 'mb202701')")
        conn.execute("SELECT add_app_password('foo@example.com', 'phone', ARRAY['imap'])")
        conn.execute("SELECT set_login_networks('foo@example.com', ARRAY['192.0.2.0/24'])")
        conn.execute("SELECT add_mailbox('kept@example.com', 'pw pw pw')")
        conn.execute("SELECT remove_mailbox('kept@example.com', 30)")  # restorable for 30 days
        conn.execute("SELECT set_password_max_age('example.com', 90)")
        conn.execute("SELECT add_mailbox('old@example.com', 'pw pw pw')")
        conn.execute("SELECT rename_mailbox('old@example.com', 'new@example.com')")  # in its window
    steps = [
        ("0217", "DKIM rotations are under way", "UPDATE dkim_keys SET activate_when_published = false"),
        ("0216", "former addresses of renamed mailboxes", "DELETE FROM users WHERE email = 'new@example.com'"),
        ("0215", "password ages are set", "UPDATE transports SET password_max_age = NULL"),
        ("0214", "removed mailboxes are kept", "DELETE FROM removed_mailboxes"),
        ("0213", "login networks are set", "UPDATE users SET login_networks = NULL"),
        ("0212", "app passwords exist", "DELETE FROM app_passwords"),
        ("0211", None, None),  # vacation changes recorded for `dovecot follow`: triggers only
        ("0210", None, None),  # last logins: Dovecot records them again at the next logins
        ("0209", "DKIM keys exist", "DELETE FROM dkim_keys"),
        ("0208", None, None),  # resellers and the largest-mailbox cap: none here (either refuses the rollback)
        ("0207", None, None),  # scoped admins: none granted here (a scope refuses the rollback)
        ("0206", None, None),  # bulk inserts recorded by domain: trigger functions only
        ("0205", None, None),  # the change record of `dovecot follow`: nothing a follower cannot flush again
        ("0204", None, None),  # the view sieve_delivery_scripts: no data of its own
        ("0203", None, None),  # the bounds of quota_usage: constraints only
        ("0202", None, None),  # which changes map_changes records: trigger functions only
        ("0201", None, None),  # the '#' key rule: a function's body only
        ("0200", None, None),  # password attempts: times and outcomes of guesses, nothing to keep
        ("0112", None, None),  # the change record of `maps follow`: nothing a follower cannot compile again
        ("0111", "vacations exist", "DELETE FROM vacations"),
        ("0110", None, None),
        ("0109", None, None),
        ("0108", "maildirs are queued for purging", "DELETE FROM maildir_purge_queue"),
        ("0107", "send-as grants exist", "DELETE FROM send_as"),
        ("0107", "aliases exist", "DELETE FROM aliases"),
        ("0106", "mailboxes exist", "DELETE FROM users"),
        ("0105", "domains exist", None),
    ]
    for migration, refusal, clear in steps:
        before = applied_ids(fresh_db)
        if refusal is None:
            assert f"rolled back {migration}_" in cli(["migrate", "rollback", "--dsn", fresh_db], check=True).stdout
            continue
        r = cli(["migrate", "rollback", "--dsn", fresh_db])
        assert r.exit_code == 1 and refusal in r.stderr and r.stderr.count("\n") == 1, (migration, r)
        assert applied_ids(fresh_db) == before
        if clear is None:
            break
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            if migration == "0108":  # nothing was lost on the way
                assert conn.execute("SELECT alias_of FROM transports WHERE domain = 'example.net'").fetchone() == ("example.com",)
                assert conn.execute("SELECT disabled_services FROM users").fetchall() == [(["pop3"],)]
            conn.execute(clear)
        if migration == "0107" and refusal.startswith("send-as"):
            continue  # the same migration refuses again, for the aliases
        r = cli(["migrate", "rollback", "--dsn", fresh_db], check=True)
        assert f"rolled back {migration}_" in r.stdout
    with psycopg.connect(fresh_db) as conn:  # nothing was lost on the way
        assert conn.execute("SELECT alias_of FROM transports WHERE domain = 'example.net'").fetchone() == ("example.com",)
        assert conn.execute("SELECT max_aliases FROM transports WHERE domain = 'example.com'").fetchone() == (10,)

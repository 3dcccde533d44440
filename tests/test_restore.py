"""Disaster recovery as the admin guide writes it: pg_dump of the mail database, a fresh
cluster, `mailbook init`, pg_restore, `migrate apply`, the service password set again.
The restored database exports exactly what the original exported, and a real Dovecot
logs users in against it (a real Postfix client looks them up) with their old passwords."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest

from mailbook.demo.cluster import PrivateCluster
from mailbook.files import write_private
from mailbook.passwords import set_role_password
from tests.harness.dovecot import install_dovecot
from tests.harness.process import cli, private_dir, remove, require_program, require_root, run

READER_PW, AUTH_PW = "reader-pw-restored", "auth-pw-restored"


@pytest.fixture
def original(fresh_db, cluster):
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_domain('example.org')")
        conn.execute("SELECT add_mailbox('foo@example.com', 'foo old secret', 'Foo Lastname')")
        conn.execute("SELECT add_mailbox('bar@example.org', 'bar old secret')")
        conn.execute("SELECT add_mailbox('sleepy@example.com', 'sleepy secret')")
        conn.execute("SELECT set_mailbox_active('sleepy@example.com', false)")
        conn.execute("SELECT add_alias('team@example.com', 'foo@example.com')")
        conn.execute("SELECT add_alias('team@example.com', 'bar@example.org')")
        conn.execute("SELECT add_alias('out@example.org', 'someone@elsewhere.example')")
    return fresh_db


def export(dsn: str, path: Path) -> str:
    cli(["export", str(path), "--dsn", dsn], check=True)
    return path.read_text()


def test_dump_restored(original, cluster, tmp_path):
    """A dump restored into a fresh cluster exports the same and logs users in."""
    require_root("this test starts Dovecot and")
    before = export(original, tmp_path / "before.csv")
    dump = tmp_path / "mail.dump"
    dbname = psycopg.conninfo.conninfo_to_dict(original)["dbname"]
    r = run([str(cluster.bindir / "pg_dump"), "-h", cluster.host, "-p", str(cluster.port), "-U", "postgres",
             "-Fc", "-d", dbname, "-f", str(dump)])
    assert r.returncode == 0, r.stderr

    home = private_dir("mailbook-restore-")
    fresh = PrivateCluster(Path(tempfile.mkdtemp(prefix="mailbook-restored-")), durable=False)
    dovecot = None
    try:
        fresh.start()
        # the admin guide's steps, on a cluster that has never seen mailbook
        cli(["init", "--dsn", fresh.dsn()], check=True)
        dump.chmod(0o644)  # pg_restore runs as the server's OS user when we are root
        r = subprocess.run([str(fresh.bindir / "pg_restore"), "-h", fresh.host, "-p", str(fresh.port),
                            "-U", "postgres", "--single-transaction", "-d", "mail", str(dump)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        r = cli(["migrate", "apply", "--dsn", fresh.dsn("mail")])
        assert r.exit_code == 0 and "no pending migrations" in r.stdout, r
        with psycopg.connect(fresh.dsn(), autocommit=True) as conn:
            set_role_password(conn, "mailauth", AUTH_PW)
            set_role_password(conn, "mailreader", READER_PW)

        assert export(fresh.dsn("mail"), tmp_path / "after.csv") == before
        doctor = cli(["doctor", "--dsn", fresh.dsn("mail")])
        assert doctor.exit_code == 0, doctor.stdout

        # Dovecot, installed by mailbook against the restored database: the old passwords work
        auth_pw = home / "auth.pw"
        write_private(auth_pw, AUTH_PW + "\n")
        dovecot = install_dovecot(home, home / "mail", "--port", str(fresh.port), "--password-file", str(auth_pw))
        dovecot.start()
        assert dovecot.auth_test("foo@example.com", "foo old secret").returncode == 0, dovecot.log_text()
        assert dovecot.auth_test("bar@example.org", "bar old secret").returncode == 0, dovecot.log_text()
        assert dovecot.auth_test("foo@example.com", "wrong").returncode == 77
        assert dovecot.auth_test("sleepy@example.com", "sleepy secret").returncode == 77  # still disabled

        # and Postfix's own client finds the mailboxes and aliases
        reader_pw = home / "reader.pw"
        write_private(reader_pw, READER_PW + "\n")
        maps = home / "maps"
        cli(["maps", "install", "--dest", str(maps), "--port", str(fresh.port), "--password-file", str(reader_pw)],
            check=True)
        config = home / "postfix"
        config.mkdir()
        (config / "main.cf").write_text("compatibility_level = 3.6\nmyhostname = restored.test\n")
        postmap = require_program("/usr/sbin/postmap")
        for key, table, answer in [("foo@example.com", "mailboxes.cf", "example.com/foo/"),
                                   ("team@example.com", "virtual.cf", "foo@example.com,bar@example.org"),
                                   ("example.org", "domains.cf", "example.org")]:
            r = run([postmap, "-c", str(config), "-q", key, f"pgsql:{maps / table}"])
            assert (r.returncode, r.stdout.strip()) == (0, answer), r.stderr
    finally:
        if dovecot:
            dovecot.stop()
        fresh.destroy()
        remove(home)

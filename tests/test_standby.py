"""A primary with a streaming hot standby (pg_basebackup -R), both on loopback. The map
files and Dovecot's connect line list both (`--standby`). With the primary stopped,
Postfix's own client still answers and a real Dovecot still logs users in, from the
standby; provisioning there fails with one clear read-only line; `mailbook doctor`
reports the replication on both sides."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from mailbook.demo.cluster import SUPERUSER, PrivateCluster, free_port
from mailbook.dovecot import dovecot_queries
from mailbook.files import write_private
from tests.harness.database import migrate
from tests.harness.dovecot import install_dovecot
from tests.harness.process import cli, private_dir, remove, require_program, run

READER_PW, AUTH_PW = "reader-pw-standby", "auth-pw-standby"


@pytest.fixture(scope="module")
def pair():
    with ExitStack() as stop:  # a standby that fails to start leaves no primary behind
        primary = PrivateCluster(Path(tempfile.mkdtemp(prefix="mailbook-primary-")), durable=False)
        stop.callback(primary.destroy)
        primary.start()
        with open(primary.data / "pg_hba.conf", "a") as f:
            f.write(f"local replication {SUPERUSER} trust\n")
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        migrate(primary, mailreader=READER_PW, mailauth=AUTH_PW)
        with psycopg.connect(primary.dsn("mail"), autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
            conn.execute("SELECT add_mailbox('foo@example.com', 'correct horse')")
            conn.execute("SELECT add_alias('info@example.com', 'foo@example.com')")

        root = Path(tempfile.mkdtemp(prefix="mailbook-standby-"))
        standby = PrivateCluster(root, port=free_port(), durable=False)
        stop.callback(standby.destroy)
        root.chmod(0o700)
        shutil.chown(root, standby.os_user, standby.os_user)  # pg_basebackup writes as the server's user
        primary._run("pg_basebackup", "-D", str(standby.data), "-R", "-X", "stream", "--checkpoint=fast",
                     "-h", primary.host, "-p", str(primary.port), "-U", SUPERUSER)
        with open(standby.data / "postgresql.conf", "a") as f:  # its own socket directory
            f.write(f"unix_socket_directories = '{standby.socket_dir}'\n")
        standby.start()
        yield primary, standby


def wait_for(predicate, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def postmap(key: str, path: Path, config: Path) -> tuple[int, str, str]:
    r = run([require_program("/usr/sbin/postmap"), "-c", str(config), "-q", key, f"pgsql:{path}"])
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def test_standby_serves_lookups(pair, tmp_path):
    """Lookups and logins go on from the standby and provisioning there is refused clearly."""
    primary, standby = pair
    # a change on the primary reaches the standby
    with psycopg.connect(primary.dsn("mail"), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox('late@example.com', 'pw pw pw')")
    with psycopg.connect(standby.dsn("mail"), autocommit=True) as conn:
        wait_for(lambda: conn.execute("SELECT count(*) FROM users WHERE email = 'late@example.com'").fetchone()[0],
                 "the standby to replay the new mailbox")

    # the map files and Dovecot's connect line, both servers listed
    pw = tmp_path / "reader.pw"
    write_private(pw, READER_PW + "\n")
    maps = tmp_path / "maps"
    cli(["maps", "install", "--dest", str(maps), "--port", str(primary.port), "--standby",
         f"127.0.0.1:{standby.port}", "--password-file", str(pw)], check=True)
    assert f"hosts = 127.0.0.1:{primary.port} 127.0.0.1:{standby.port}" in (maps / "mailboxes.cf").read_text()
    home = private_dir("mailbook-standby-dovecot-")  # Dovecot's auth worker must reach its files
    auth_pw = home / "auth.pw"
    write_private(auth_pw, AUTH_PW + "\n")
    dovecot = install_dovecot(home, home / "mail", "--port", str(primary.port),
                              "--standby", f"127.0.0.1:{standby.port}", "--password-file", str(auth_pw))
    connect = dovecot.connect()
    assert f"port={primary.port},{standby.port}" in connect
    config = tmp_path / "postfix"
    config.mkdir()
    (config / "main.cf").write_text("compatibility_level = 3.6\nmyhostname = standby.test\n")

    r = cli(["doctor", "--dsn", primary.dsn("mail"), "--json"], check=True)
    replication = next(c for c in json.loads(r.stdout) if c["check"] == "replication")
    assert replication["status"] == "pass" and "1 standby(s)" in replication["detail"] and "streaming" in replication["detail"]

    primary.stop()
    try:
        dovecot.start()
        # a real Dovecot login, answered by the standby
        assert dovecot.auth_test("foo@example.com", "correct horse").returncode == 0, dovecot.log_text()
        assert dovecot.auth_test("foo@example.com", "wrong horse").returncode != 0
        for _ in range(3):  # Postfix tries the hosts in random order: each time it must end up answering
            assert postmap("foo@example.com", maps / "mailboxes.cf", config)[:2] == (0, "example.com/foo/")
            assert postmap("info@example.com", maps / "virtual.cf", config)[:2] == (0, "foo@example.com")
            assert postmap("nobody@example.com", maps / "mailboxes.cf", config)[:2] == (1, "")
        # Dovecot's own password query, over its own connect line (libpq, hosts in order)
        # 2.3's text: the same SQL
        query = dovecot_queries()["password_query"].replace("'%u'", "%s").replace("%{service}", "imap").replace("%r", "")
        with psycopg.connect(connect) as conn:
            user, hash_, allow_nets = conn.execute(query, ("foo@example.com",)).fetchone()[:3]
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        assert user == "foo@example.com" and hash_.startswith("{BLF-CRYPT}$2") and allow_nets is None  # no login networks
        with psycopg.connect(standby.dsn("mail")) as conn:
            assert conn.execute("SELECT crypto.crypt('correct horse', %s) = %s",
                                (hash_.removeprefix("{BLF-CRYPT}"), hash_.removeprefix("{BLF-CRYPT}"))).fetchone() == (True,)

        r = cli(["domain", "add", "example.org", "--dsn", standby.dsn("mail")])
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "read-only" in r.stderr, r.stderr
        assert "provision on the primary" in r.stderr and "25006" in r.stderr
        r = cli(["doctor", "--dsn", standby.dsn("mail"), "--json"])
        replication = next(c for c in json.loads(r.stdout) if c["check"] == "replication")
        assert replication["status"] == "warn" and "not receiving WAL from a primary" in replication["detail"]
    finally:
        dovecot.stop()
        remove(home)
        primary.start()

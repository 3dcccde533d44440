"""`mailbook demo` and the README's two commands, run as a newcomer would."""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from mailbook import Failure
from mailbook.demo import cluster as cluster_mod
from mailbook.demo import demo as demo_module
from tests.harness.database import verified
from tests.harness.process import PYTHON, ROOT, run


@pytest.fixture
def demo_dir():
    parent = Path(tempfile.mkdtemp(prefix="mailbook-demo-"))
    os.chmod(parent, 0o755)  # as root, the server's OS user must reach the directory
    yield parent / ".mailbook"
    run([PYTHON, str(ROOT / "runner.py"), "demo", "--reset", "--data-dir", str(parent / ".mailbook")])
    shutil.rmtree(parent, ignore_errors=True)


def demo(*args: str, cwd=None):
    return run([PYTHON, str(ROOT / "runner.py"), "demo", *args], cwd=cwd)


def test_demo_provisions_an_example_and_shows_what_postfix_sees(demo_dir):
    r = demo("--data-dir", str(demo_dir))
    assert r.returncode == 0, r.stderr
    assert "started a new private PostgreSQL cluster" in r.stdout
    assert "SELECT add_mailbox('foo@example.com', <password in" in r.stdout
    assert re.search(r"mailboxes\.cf\s+virtual_mailbox_maps\s+foo@example\.com\s+-> example\.com/foo/\n", r.stdout)
    assert re.search(r"virtual\.cf\s+virtual_alias_maps\s+postmaster@example\.com\s+-> foo@example\.com\n", r.stdout)
    # the first screen: only what the maps answer; an unknown address once, with what Postfix does
    assert "(not found)" not in r.stdout and len(r.stdout.splitlines()) <= 35, r.stdout
    assert "nobody@example.com: in no map, so Postfix refuses it at RCPT (550 5.1.1" in r.stdout
    # every command it shows works as shown: python + runner.py here, .venv/bin/mailbook from demo.sh
    shown = re.search(r"or with the command line:\s+(.+) mailbox add bar@example\.com", r.stdout).group(1)
    assert shown == f"{PYTHON} {ROOT / 'runner.py'}", shown
    assert f"`{shown} demo --stop`" in r.stdout
    # secrets: in files only their owner may read, never on the screen
    for name in ("mailreader.password", "mailauth.password", "foo@example.com.password", "pgpass"):
        path = demo_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        if name.endswith(".password"):
            assert path.read_text().strip() not in r.stdout + r.stderr


def test_demo_roles_log_in(demo_dir):
    """Demo roles log in over TCP with the .pgpass file and read only what they may."""
    r = demo("--data-dir", str(demo_dir))
    assert r.returncode == 0, r.stderr
    reader_dsn = re.search(r'psql "(host=127\.0\.0\.1 [^"]*user=mailreader)"', r.stdout).group(1)
    auth_dsn = reader_dsn.replace("mailreader", "mailauth")
    env = {"PGPASSFILE": str(demo_dir / "pgpass")}
    os.environ.update(env)
    try:
        with psycopg.connect(reader_dsn) as conn:
            # Postfix's role answers a map's key through its lookup function, and reads no table
            assert conn.execute("SELECT postfix_mailbox('foo', 'example.com')").fetchone() == ("example.com/foo/",)
            for query in ("SELECT password FROM users", "SELECT email FROM users", "SELECT domain FROM transports"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(query)
                conn.rollback()
        with psycopg.connect(auth_dsn) as conn:
            assert conn.execute("SELECT password FROM users").fetchone()[0].startswith("{BLF-CRYPT}$2a$10$")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT add_domain('x.example')")
    finally:
        os.environ.pop("PGPASSFILE")
    mailbox_password = (demo_dir / "foo@example.com.password").read_text().strip()
    admin_dsn = re.search(r'DBA \(superuser, Unix socket\):\s+psql "([^"]+)"', r.stdout).group(1)
    with psycopg.connect(admin_dsn) as conn:
        conn.execute("SET ROLE mailadmin")
        assert verified(conn, "foo@example.com", mailbox_password)


def test_demo_again_reuses_the_cluster_then_stops_and_resets(demo_dir):
    assert demo("--data-dir", str(demo_dir)).returncode == 0
    again = demo("--data-dir", str(demo_dir))
    assert again.returncode == 0
    assert "reused the private PostgreSQL cluster" in again.stdout
    assert "no pending" not in again.stderr and "add_mailbox" not in again.stdout.split("Connect:")[0]
    stopped = demo("--stop", "--data-dir", str(demo_dir))
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    restarted = demo("--data-dir", str(demo_dir))  # a stopped demo starts again, data intact
    assert restarted.returncode == 0 and "example.com/foo/" in restarted.stdout
    reset = demo("--reset", "--data-dir", str(demo_dir))
    assert reset.returncode == 0 and not demo_dir.exists()


def test_demo_in_a_directory_the_server_user_cannot_reach_says_what_to_do(tmp_path):
    os.chmod(tmp_path, 0o700)
    r = demo("--data-dir", str(tmp_path / ".mailbook"))
    if os.geteuid() == 0:  # the server runs as `postgres`, who cannot enter tmp_path
        assert r.returncode == 1
        assert r.stderr.startswith("mailbook: the postgres OS user cannot reach") and r.stderr.count("\n") == 1
    else:  # the server runs as ourselves
        assert r.returncode == 0, r.stderr
        demo("--reset", "--data-dir", str(tmp_path / ".mailbook"))


def test_no_postgresql_binaries_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(cluster_mod.glob, "glob", lambda pattern: [])
    with pytest.raises(Failure, match=r"\(Debian: apt-get install postgresql\)$"):
        cluster_mod.find_bindir()


def test_readme_opens_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    first = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "scripts/demo.sh" in first and "scripts/test.sh" in first
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_main_job_from_a_fresh_clone():
    """scripts/demo.sh in a fresh clone of the committed tree: installs, then demos."""
    parent = Path(tempfile.mkdtemp(prefix="mailbook-clone-"))
    os.chmod(parent, 0o755)
    clone = parent / "clone"
    assert run(["git", "clone", "-q", str(ROOT), str(clone)]).returncode == 0
    r = run([str(clone / "scripts" / "demo.sh")], cwd=clone, env={**os.environ, "PYTHON": PYTHON})
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "example.com/foo/" in r.stdout
        assert (clone / ".venv" / "bin" / "mailbook").exists()
        assert "Stop it with `.venv/bin/mailbook demo --stop`" in r.stdout, r.stdout  # from the clone, as shown
    finally:
        run([str(clone / ".venv" / "bin" / "mailbook"), "demo", "--reset"], cwd=clone)
        shutil.rmtree(parent, ignore_errors=True)


def test_demo_as_root(monkeypatch):
    """Demo as root in a private directory puts the cluster where postgres can reach.

    A checkout under /root (mode 0700): the server runs as postgres, which cannot enter it."""
    base = Path(tempfile.mkdtemp())  # /tmp/xyz; pytest's own tmp_path sits under a 0700 directory
    base.chmod(0o755)
    private = base / "private"
    private.mkdir(mode=0o700)
    (private / "checkout").mkdir()
    monkeypatch.chdir(private / "checkout")
    if os.geteuid() == 0:
        assert demo_module.default_root() == demo_module.ROOT_FALLBACK
    else:
        assert demo_module.default_root() == Path(".mailbook")
    private.chmod(0o755)
    assert demo_module.default_root() == Path(".mailbook")
    shutil.rmtree(base)

"""Dovecot's authentication cache as `mailbook dovecot install` ships it
(auth-mailbook.conf.ext: auth_cache_size, auth_cache_ttl, auth_cache_negative_ttl), against
a real Dovecot 2.3 and a real PostgreSQL that the tests stop and start.

Dovecot reaches PostgreSQL through PgBouncer, as the README recommends. What is proven:
a user seen before an outage logs in during it (doveadm auth test and IMAP; at once while
the entry is younger than the ttl, after PgBouncer's query_wait_timeout when older), one
never seen does not, nor does a wrong password; while PostgreSQL answers, a disabled
mailbox and an old password stop working once the ttl has passed (here a short ttl, set
with the same --auth-cache-ttl option mailbook writes; shipped: 900 s), a new password
works at once; `doveadm auth cache flush USER` makes a disable immediate, which also keeps
an outage from serving the entry cached before it (without the flush, it does: proven too).
The cache outlives a quiet spell: Dovecot ends a process that has had no client for a
while (here 2 s, default 60), and the auth process holds the cache, so the shipped
configuration keeps one (process_min_avail).

Needs root (Dovecot's mail processes switch users).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest

from mailbook.demo.cluster import PrivateCluster
from mailbook.files import write_private
from tests.harness.database import migrate
from tests.harness.dovecot import imap_login as harness_imap_login
from tests.harness.dovecot import install_dovecot
from tests.harness.pgbouncer import PgBouncer
from tests.harness.postfix import VMAIL_GID, VMAIL_UID
from tests.harness.process import private_dir, remove, require_root

AUTH_PW = "auth-pw-cache"
TTL = 6  # seconds; written by `mailbook dovecot install --auth-cache-ttl 6`
USERS = {f"{name}@example.com": f"{name} secret" for name in
         ("seen", "never", "changed", "newpw", "disabled", "flushed", "stale")}


@pytest.fixture(scope="module")
def stack():
    """A private PostgreSQL (the tests stop it) and a Dovecot with the shipped cache settings."""
    require_root("the Dovecot cache tests")
    root = private_dir("mailbook-authcache-")
    pg = PrivateCluster(root / "pg")
    dovecot = bouncer = None
    try:
        pg.start()
        migrate(pg, mailauth=AUTH_PW, mailreader="reader-pw-cache")
        with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
            for user, password in USERS.items():
                conn.execute("SELECT add_mailbox(%s, %s)", (user, password))
        mail = root / "mail"
        mail.mkdir()
        os.chown(mail, VMAIL_UID, VMAIL_GID)
        write_private(root / "auth.pw", AUTH_PW + "\n")
        write_private(root / "reader.pw", "reader-pw-cache\n")
        # Dovecot reaches PostgreSQL through PgBouncer, as the README recommends; directly,
        # Dovecot 2.3.19's auth process crashed (signal 11) when it could not connect, and
        # its cache went with it (see the admin guide)
        bouncer = PgBouncer(root / "pgbouncer", pg)
        bouncer.install_and_start(root / "reader.pw", root / "auth.pw")
        dovecot = install_dovecot(root, mail, "--port", str(bouncer.port), "--password-file", str(root / "auth.pw"),
                                  "--auth-cache-ttl", str(TTL))
        # processes without clients end after 2 s instead of 60: the outage test's pauses
        # then prove the auth process (which holds the cache) is kept however quiet the server
        dovecot.idle_kill = 2
        dovecot.start()
        yield pg, dovecot
    finally:
        if dovecot:
            dovecot.stop()
        if bouncer:
            bouncer.stop()
        pg.destroy()
        remove(root)


def sql(pg: PrivateCluster, statement: str, *args) -> None:
    with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute(statement, args)


def auth(dovecot, user: str, password: str | None = None) -> bool:
    return dovecot.auth_test(user, USERS[user] if password is None else password).returncode == 0


def imap_login(dovecot, user: str, password: str | None = None) -> bool:
    # 200 s: an IMAP login during an outage waits for the lookups to fail twice
    return harness_imap_login(dovecot, user, USERS[user] if password is None else password, timeout=200)


class Stopped:
    """PostgreSQL stopped for the with block, started again afterwards whatever happens."""

    def __init__(self, pg: PrivateCluster):
        self.pg = pg

    def __enter__(self):
        self.pg.stop()

    def __exit__(self, *exc):
        self.pg.start()


def test_shipped_settings_are_the_ones_dovecot_runs_with(stack):
    _, dovecot = stack
    r = dovecot.doveadm("config", "-h", "auth_cache_size")
    assert r.stdout.strip().replace(" ", "") == "32M", r.stdout + r.stderr  # 2.3 says "32 M", 2.4 "32M"
    for name in ("auth_cache_ttl", "auth_cache_negative_ttl"):  # the negative ttl: at most 60 s
        assert dovecot.doveadm("config", "-h", name).stdout.strip() in (f"{TTL} secs", f"{TTL} s")  # 2.3, 2.4
    # cached passwords are checked in the auth process (a worker would need PostgreSQL)
    assert dovecot.doveadm("config", "-h", "auth_cache_verify_password_with_worker").stdout.strip() == "no"


def test_a_new_password_works_at_once(stack):
    """A mismatch after a successful login is looked up again, not refused from the cache."""
    pg, dovecot = stack
    user = "newpw@example.com"
    assert auth(dovecot, user)
    sql(pg, "SELECT set_password(%s, %s)", user, "newpw new secret")
    assert auth(dovecot, user, "newpw new secret")
    assert not auth(dovecot, user)  # and the old one is refused from then on


def test_cache_ttl_bounds_old_answers(stack):
    """While PostgreSQL answers an old password and a disabled mailbox stop after the TTL."""
    pg, dovecot = stack
    changed, disabled = "changed@example.com", "disabled@example.com"
    assert auth(dovecot, changed) and auth(dovecot, disabled) and imap_login(dovecot, disabled)
    seen = time.monotonic()
    sql(pg, "SELECT set_password(%s, %s)", changed, "changed new secret")
    sql(pg, "SELECT set_mailbox_active(%s, false)", disabled)
    if time.monotonic() - seen < TTL - 2:  # within the ttl the cached entries still answer
        assert auth(dovecot, changed) and auth(dovecot, disabled), "no cache: the ttl below proves little"
    time.sleep(max(0.0, seen + TTL + 1 - time.monotonic()))
    assert not auth(dovecot, changed)
    assert auth(dovecot, changed, "changed new secret")
    assert not auth(dovecot, disabled) and not imap_login(dovecot, disabled)


def test_flushing_a_user_from_the_cache_makes_a_disable_immediate(stack):
    pg, dovecot = stack
    flushed, stale = "flushed@example.com", "stale@example.com"
    for user in (flushed, stale):
        assert auth(dovecot, user) and imap_login(dovecot, user)
        sql(pg, "SELECT set_mailbox_active(%s, false)", user)
    r = dovecot.doveadm("auth", "cache", "flush", flushed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not auth(dovecot, flushed) and not imap_login(dovecot, flushed)  # at once, not after the ttl
    # stale@example.com is left as it is (disabled, not flushed, not logged into since):
    # the outage test below shows what that costs


def test_cache_carries_an_outage(stack):
    """During an outage cached users log in and only an unflushed change is undone.

    PostgreSQL stopped. Each login below runs at the same time: a lookup that is sent
    waits for PgBouncer's query_wait_timeout (40 s), then the cache answers. A user whose
    entry is younger than the ttl logs in at once (IMAP too); one seen earlier after that
    wait (password checks only here: an IMAP login waits twice, passdb then userdb, about
    100 s measured, longer than clients wait); one never seen is refused, as is a wrong
    password. The changes of the test above hold (the old password and the disabled
    mailbox stay refused: the cache was refreshed after them) except a disable that was
    neither flushed nor followed by a lookup: its old entry lets the user in."""
    pg, dovecot = stack
    old = "seen@example.com"
    assert auth(dovecot, old) and imap_login(dovecot, old)
    time.sleep(TTL + 1)  # old's entries have expired; fresh's below have not
    fresh = "newpw@example.com"
    assert auth(dovecot, fresh, "newpw new secret") and imap_login(dovecot, fresh, "newpw new secret")
    checks = {  # name: (function, user, password, expected)
        "fresh doveadm": (auth, fresh, "newpw new secret", True),
        "fresh IMAP": (imap_login, fresh, "newpw new secret", True),
        "old doveadm": (auth, old, None, True),
        "wrong password": (auth, fresh, "a wrong password", False),
        "never seen doveadm": (auth, "never@example.com", None, False),
        "changed, old password": (auth, "changed@example.com", None, False),
        "changed, new password": (auth, "changed@example.com", "changed new secret", True),
        "disabled": (auth, "disabled@example.com", None, False),
        "disabled, flushed": (auth, "flushed@example.com", None, False),
        "disabled, not flushed (the gap)": (auth, "stale@example.com", None, True),
    }
    results: dict[str, tuple[bool, float]] = {}

    def attempt(name: str) -> None:
        f, user, password, _ = checks[name]
        t0 = time.monotonic()
        ok = f(dovecot, user, password)
        results[name] = (ok, round(time.monotonic() - t0, 1))

    with Stopped(pg):
        threads = [threading.Thread(target=attempt, args=(n,)) for n in checks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=200)
    print("\n" + "\n".join(f"{n}: {'logged in' if ok else 'refused'} after {s} s"
                            for n, (ok, s) in results.items()))
    assert {n: ok for n, (ok, _) in results.items()} == {n: c[3] for n, c in checks.items()}, dovecot.log_text()[-3000:]
    assert "Password query failed" in dovecot.log_text()  # the database was asked, and did not answer
    back = time.monotonic()  # without a restart of Dovecot: its SQL pool reconnects by itself
    while not auth(dovecot, "never@example.com") and time.monotonic() < back + 150:
        time.sleep(1)
    print(f"a user never seen logs in {time.monotonic() - back:.0f} s after PostgreSQL is back")
    assert auth(dovecot, "never@example.com")
    r = dovecot.doveadm("auth", "cache", "flush")  # every user, as a reload (SIGHUP) does
    assert r.returncode == 0, r.stdout + r.stderr
    assert not auth(dovecot, "stale@example.com")
    if os.environ.get("MAILBOOK_OUTAGE_LOG"):  # collecting figures for the docs
        with open(os.environ["MAILBOOK_OUTAGE_LOG"], "a") as f:
            f.write(json.dumps({"fault": "Dovecot auth cache, PostgreSQL stopped", **results}) + "\n")


def test_cache_size_per_user_is_reported_by_the_auth_process(stack):
    """The figure the shipped auth_cache_size is sized by (SIGUSR2 makes the auth process
    log its cache use): printed, not asserted beyond being there."""
    pg, dovecot = stack
    dovecot.doveadm("auth", "cache", "flush")
    users = ["seen@example.com", "changed@example.com", "never@example.com"]
    passwords = {"changed@example.com": "changed new secret"}
    for user in users:
        assert auth(dovecot, user, passwords.get(user)) and imap_login(dovecot, user, passwords.get(user))
    master = int((dovecot.root / "run" / "master.pid").read_text())
    auth_pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                 and _ppid(p) == master and (p / "cmdline").read_bytes().startswith(b"dovecot/auth\0")]
    assert auth_pids, "no dovecot/auth process under the master"
    before = len(dovecot.log_text())
    os.kill(auth_pids[0], signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while "cache current size" not in dovecot.log_text()[before:] and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = [l for l in dovecot.log_text()[before:].splitlines() if "Authentication cache" in l]
    assert any("current size" in l for l in lines), dovecot.log_text()[-1000:]
    print("\n" + "\n".join(lines) + f"\n({len(users)} users, each logged in through doveadm and IMAP)")


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1

"""`mailbook dovecot follow` with the auth cache as `mailbook dovecot install` ships it
(auth_cache_ttl 900 s), against a real PostgreSQL (this module's own: the follower must
live through its restart), a real Postfix delivering through Dovecot's LMTP (quota-status
at RCPT) and a real Dovecot.

What is proven: without the follower a quota raise, a disabled mailbox and a new password
keep their cached answers (the ttl is 15 minutes); with it each counts within seconds (the
figures are printed), only the users concerned are flushed, and a PostgreSQL restart
under it flushes nothing while the server is away and loses no change after. The userdb
answers the vacation dict (sieve_before) only for mailboxes with a reply: a delivery to
any other reads no script from SQL (PostgreSQL's log of the auth role), and a reply set
while Dovecot runs answers once the follower flushed its mailbox.

Needs root (Postfix and Dovecot do).
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from mailbook import data_dir
from mailbook.files import write_private
from mailbook.provisioning import bulk
from tests.harness.database import migrated_cluster
from tests.harness.dovecot import imap_login, install_dovecot
from tests.harness.postfix import install_postfix
from tests.harness.process import daemon_root, started

MAILBOOK = str(Path(sys.executable).parent / "mailbook")
READER_PW, AUTH_PW, QUOTA_PW = "reader-pw-authfollow", "auth-pw-authfollow", "quota-pw-authfollow"
BOXES = ("quota", "slow", "disabled", "passwd", "noimap", "nofollow", "other", "away", "later")
SOON = 5.0  # seconds: "within seconds" (measured: well under one)


def pw(box: str) -> str:
    return f"{box} secret pw"


@pytest.fixture(scope="module")
def stack():
    """PostgreSQL, Postfix with LMTP delivery, Dovecot with the shipped cache settings."""
    with ExitStack() as stop:
        root = stop.enter_context(daemon_root("mailbook-authfollow-", "the dovecot follow tests"))
        pg = stop.enter_context(migrated_cluster(root / "pg", durable=False, mailreader=READER_PW,
                                                 mailauth=AUTH_PW, mailquota=QUOTA_PW))
        with admin(pg) as conn:
            conn.execute("SELECT add_domain('example.com')")
            conn.execute("SELECT add_domain('example.org')")
            for box in BOXES:
                conn.execute("SELECT add_mailbox(%s, %s)", (f"{box}@example.com", pw(box)))
            for box in ("one", "two"):
                conn.execute("SELECT add_mailbox(%s, %s)", (f"{box}@example.org", pw(box)))
            # every statement of Dovecot's role in PostgreSQL's log: which lookups a delivery costs
            conn.execute("RESET ROLE")
            conn.execute("ALTER ROLE mailauth IN DATABASE mail SET log_statement = 'all'")
        write_private(root / "auth.pw", AUTH_PW + "\n")
        write_private(root / "quota.pw", QUOTA_PW + "\n")
        pf = install_postfix(root, pg, "mail", READER_PW, delivery="lmtp")
        started(stop, pf)
        dovecot = started(stop, install_dovecot(
            root, pf.mail, "--port", str(pg.port), "--password-file", str(root / "auth.pw"),
            "--quota-password-file", str(root / "quota.pw"), postfix=pf, shipped_cache=True))
        yield pg, pf, dovecot, root


def admin(pg):
    conn = psycopg.connect(pg.dsn("mail"), autocommit=True)
    conn.execute("SET ROLE mailadmin")
    return conn


def change(pg, statement: str, *args) -> float:
    """Run one API call as mailadmin; the monotonic time it committed."""
    with admin(pg) as conn:
        conn.execute(statement, args)
    return time.monotonic()


class Follower:
    """`mailbook dovecot follow` as its systemd unit runs it: a process of its own."""

    def __init__(self, pg, dovecot, root: Path):
        self.log = root / "dovecot-follow.log"
        self.log.write_text("")
        out = open(self.log, "a")
        self.proc = subprocess.Popen(
            [MAILBOOK, "dovecot", "follow", "--dsn", f"host=127.0.0.1 port={pg.port} dbname=mail user=mailauth",
             "--password-file", str(root / "auth.pw"),
             "--doveadm", shlex.join([dovecot.doveadm_bin, "-c", str(dovecot.conf)]), "--poll", "1"],
            stdout=out, stderr=subprocess.STDOUT, env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        out.close()
        self.wait_for_log("flushed every user")

    def log_text(self) -> str:
        return self.log.read_text()

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            assert self.proc.poll() is None, f"follow exited {self.proc.returncode}:\n{self.log_text()}"
            assert time.monotonic() < deadline, f"no {text!r} in the follower's log:\n{self.log_text()}"
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)


@pytest.fixture
def follower(stack):
    pg, _, dovecot, root = stack
    f = Follower(pg, dovecot, root)
    yield f
    f.stop()


def rcpt(postfix, recipient: str, size: int) -> int:
    with postfix.smtp() as s:
        s.mail("sender@elsewhere.example", [f"SIZE={size}"])
        return s.rcpt(recipient)[0]


def auth(dovecot, user: str, password: str, service: str | None = None) -> bool:
    return dovecot.auth_test(user, password, service).returncode == 0


def seconds_until(check, since: float, timeout: float = SOON) -> float | None:
    """Seconds from since until check() is true, trying every 0.1 s for timeout; None if never."""
    while True:
        if check():
            return round(time.monotonic() - since, 2)
        if time.monotonic() > since + timeout:
            return None
        time.sleep(0.1)


def test_shipped_cache_ttl_is_15_minutes(stack):
    _, _, dovecot, _ = stack
    ttl = dovecot.doveadm("config", "-h", "auth_cache_ttl").stdout.strip()
    assert ttl in ("15 mins", "900 secs", "900s", "900 s", "15min", "15 min"), ttl


def test_without_follower_changes_wait_for_the_ttl(stack):
    """The problem: with nothing flushing, a raise, a disable and a new password are not
    seen for seconds (for up to the ttl, 15 minutes)."""
    pg, postfix, dovecot, _ = stack
    user = "slow@example.com"
    change(pg, "SELECT set_mailbox_quota(%s, 3000)", user)
    assert rcpt(postfix, user, 5000) == 552  # cached: the 3000-byte limit
    assert auth(dovecot, user, pw("slow"))
    t = change(pg, "SELECT set_mailbox_quota(%s, 100000)", user)
    assert seconds_until(lambda: rcpt(postfix, user, 5000) == 250, t, timeout=3) is None
    t = change(pg, "SELECT set_mailbox_active(%s, false)", user)
    assert seconds_until(lambda: not auth(dovecot, user, pw("slow")), t, timeout=3) is None
    dovecot.doveadm("auth", "cache", "flush", user)  # put back as it should be
    change(pg, "SELECT set_mailbox_active(%s, true)", user)


def test_quota_raise_counts_at_the_next_rcpt(stack, follower):
    """A raise is accepted, and a lowered quota refused, at RCPT within seconds."""
    pg, postfix, dovecot, _ = stack
    user = "quota@example.com"
    change(pg, "SELECT set_mailbox_quota(%s, 3000)", user)
    assert seconds_until(lambda: rcpt(postfix, user, 5000) == 552, time.monotonic()) is not None
    assert rcpt(postfix, user, 5000) == 552  # and now it is cached
    t = change(pg, "SELECT set_mailbox_quota(%s, 2000000)", user)
    raised = seconds_until(lambda: rcpt(postfix, user, 5000) == 250, t)
    t = change(pg, "SELECT set_mailbox_quota(%s, 1000)", user)
    lowered = seconds_until(lambda: rcpt(postfix, user, 5000) == 552, t)
    print(f"\nquota raise accepted after {raised} s, lowered quota refused after {lowered} s")
    assert raised is not None and lowered is not None, follower.log_text()
    assert "flushed 1 user(s)" in follower.log_text() and user in follower.log_text()


def test_a_disabled_mailbox_stops_logging_in(stack, follower):
    pg, _, dovecot, _ = stack
    user = "disabled@example.com"
    assert auth(dovecot, user, pw("disabled")) and imap_login(dovecot, user, pw("disabled"))
    t = change(pg, "SELECT set_mailbox_active(%s, false)", user)
    took = seconds_until(lambda: not auth(dovecot, user, pw("disabled")), t)
    print(f"\ndisabled mailbox refused after {took} s")
    assert took is not None, follower.log_text()
    assert not imap_login(dovecot, user, pw("disabled"))
    t = change(pg, "SELECT set_mailbox_active(%s, true)", user)  # and back, past the negative cache
    assert seconds_until(lambda: auth(dovecot, user, pw("disabled")), t) is not None


def test_an_old_password_stops_working(stack, follower):
    pg, _, dovecot, _ = stack
    user = "passwd@example.com"
    assert auth(dovecot, user, pw("passwd")) and imap_login(dovecot, user, pw("passwd"))
    t = change(pg, "SELECT set_password(%s, %s)", user, "passwd new secret")
    took = seconds_until(lambda: not auth(dovecot, user, pw("passwd")), t)
    print(f"\nold password refused after {took} s")
    assert took is not None, follower.log_text()
    assert not imap_login(dovecot, user, pw("passwd"))
    assert auth(dovecot, user, "passwd new secret") and imap_login(dovecot, user, "passwd new secret")


def test_a_disabled_service_and_domain_stop_logging_in(stack, follower):
    pg, _, dovecot, _ = stack
    user = "noimap@example.com"
    assert auth(dovecot, user, pw("noimap"), "imap") and auth(dovecot, user, pw("noimap"), "pop3")
    t = change(pg, "SELECT set_mailbox_service(%s, 'imap', false)", user)
    assert seconds_until(lambda: not auth(dovecot, user, pw("noimap"), "imap"), t) is not None
    assert auth(dovecot, user, pw("noimap"), "pop3")
    # a domain: every mailbox of it, from one record
    assert all(auth(dovecot, f"{b}@example.org", pw(b)) for b in ("one", "two"))
    t = change(pg, "SELECT set_domain_active('example.org', false)")
    took = seconds_until(lambda: not any(auth(dovecot, f"{b}@example.org", pw(b)) for b in ("one", "two")), t)
    print(f"\nmailboxes of a disabled domain refused after {took} s")
    assert took is not None, follower.log_text()
    change(pg, "SELECT set_domain_active('example.org', true)")


def test_an_import_is_flushed_by_domain(stack, follower):
    """An import of 1,000 mailboxes into one domain records that domain once, not each
    mailbox (issue 35), and the follower flushes it: a login tried before the import
    (cached as unknown for auth_cache_negative_ttl, 60 s) works within seconds after."""
    pg, _, dovecot, _ = stack
    user, secret = "imp7@example.org", "imported secret"
    assert not auth(dovecot, user, secret)  # now cached: no such user
    with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:
        hashed = conn.execute("SELECT '{BLF-CRYPT}' || crypto.crypt(%s, crypto.gen_salt('bf', 4))", (secret,)).fetchone()[0]
    rows = "".join(f"mailbox,imp{i}@example.org,{hashed}\n" for i in range(1000))
    with admin(pg) as conn, conn.transaction():
        count, problems = bulk.import_csv(conn, io.StringIO("kind,address,password_hash\n" + rows), dry_run=False)
        conn.execute("RESET ROLE")
        recorded = conn.execute("SELECT domain, email FROM auth_cache_changes WHERE xid = pg_current_xact_id()").fetchall()
    t = time.monotonic()
    assert (count, problems, recorded) == (1000, [], [("example.org", None)])
    took = seconds_until(lambda: auth(dovecot, user, secret), t)
    print(f"\nimported mailbox logs in after {took} s")
    assert took is not None, follower.log_text()
    # the domain's mailboxes, one, two and the 1,000 new ones: more than a batch flushes one by one
    follower.wait_for_log("flushed every user from Dovecot's auth cache (more than 1000 users changed)")
    change(pg, "SELECT remove_mailbox('imp' || i || '@example.org') FROM generate_series(0, 999) i")


def test_only_changed_users_are_flushed(stack, follower):
    """An unrelated column (realname) records nothing; a change flushes its user alone."""
    pg, _, _, _ = stack
    before = follower.log_text()
    with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:  # the owner's DML: no API changes a realname
        conn.execute("UPDATE users SET realname = 'Other Name', modified = now() WHERE email = 'other@example.com'")
    change(pg, "SELECT set_mailbox_quota('nofollow@example.com', 50000)")
    follower.wait_for_log("nofollow@example.com")
    new = follower.log_text()[len(before):]
    assert "other@example.com" not in new and "flushed every user" not in new, new
    assert "flushed 1 user(s)" in new, new


def test_a_postgresql_restart_flushes_nothing_and_loses_nothing(stack, follower):
    """While PostgreSQL is away the follower flushes nothing (the cache is all Dovecot has);
    when it is back a change counts within seconds again, without a full flush."""
    pg, postfix, dovecot, _ = stack
    user = "quota@example.com"
    change(pg, "SELECT set_mailbox_quota(%s, 3000)", user)
    # doveadm user: the userdb answer quota-status uses, through the same cache (Postfix's
    # own pgsql: client marks a restarted server down for about 60 s, so not RCPT here)
    def quota_is(limit: int) -> bool:
        out = dovecot.doveadm("user", user).stdout
        return all(f in out for f in dovecot.quota_fields(limit))
    assert seconds_until(lambda: quota_is(3000), time.monotonic()) is not None
    before = len(follower.log_text())
    pg.stop()
    try:
        follower.wait_for_log("PostgreSQL unavailable")
        time.sleep(3)
    finally:
        pg.start()
        # Postfix's pgsql: client would call the server down for 60 s more: the tests after
        # this one deliver through it, so its lookup processes start afresh
        postfix.reload()
    # committed before the follower is back (it retries with backoff): caught up after
    t = change(pg, "SELECT set_mailbox_quota(%s, 2000000)", user)
    follower.wait_for_log("reconnected", timeout=60)
    # Dovecot 2.4.1 finds its connection dead at the first lookup after the restart, fails
    # that one and reconnects after a pause of its own (2.3 retried at once): the follower's
    # promise counts from when Dovecot answers again, as another mailbox's lookup shows
    assert seconds_until(lambda: dovecot.doveadm("user", "one@example.org").returncode == 0,
                         time.monotonic(), timeout=60) is not None, "\n".join(dovecot.log_errors())
    deadline = time.monotonic() + SOON
    while "flushed 1 user(s)" not in follower.log_text().partition("reconnected")[2]:
        assert time.monotonic() < deadline, follower.log_text()
        time.sleep(0.1)
    took = seconds_until(lambda: quota_is(2000000), t, timeout=SOON)
    print(f"\nafter a restart: the raise committed before the follower reconnected counts after {took} s")
    assert took is not None, follower.log_text() + "\n".join(dovecot.log_errors())
    after = follower.log_text()[before:]
    assert "flushed every user" not in after, after  # caught up from its snapshot, nothing else flushed
    assert user in after.partition("reconnected")[2]
    assert follower.proc.poll() is None
    print("\n".join(dovecot.log_errors()))


def auth_statements(pg, action) -> list[str]:
    """The statements the auth role (Dovecot's userdb and sieve dict) sent while action ran."""
    start = pg.log.stat().st_size
    action()
    time.sleep(0.5)  # the server's log is written by another process
    with open(pg.log, "rb") as log:
        log.seek(start)
        return re.findall(r"LOG:  statement: (.*)", log.read().decode(errors="replace"))


def deliver(postfix, user: str, subject: str, sender: str = "other@example.com") -> None:
    postfix.send(user, subject, sender=sender)
    postfix.delivered(f"example.com/{user.split('@')[0]}/", subject)


def test_no_sieve_dict_query_without_a_vacation(stack):
    """A delivery to a mailbox without a vacation reply reads no script from SQL: of the
    auth role's statements, only its userdb lookup. With a reply due, the dict reads it."""
    pg, postfix, dovecot, _ = stack
    counts = {}
    for user, vacation in (("nofollow@example.com", False), ("later@example.com", True)):
        if vacation:
            change(pg, "SELECT set_vacation(%s, 'Later', 'away')", user)
        dovecot.doveadm("auth", "cache", "flush", user)  # a fresh userdb lookup, as after the ttl
        statements = auth_statements(pg, lambda u=user, v=vacation: deliver(postfix, u, f"counted {v}"))
        counts[user] = (sum(1 for s in statements if " AS home," in s and user in s),  # user_query
                        sum(1 for s in statements if re.search(r"\bsieve_(delivery_)?scripts\b", s) and user in s))
    change(pg, "SELECT clear_vacation('later@example.com')")
    print(f"\nauth role statements per delivery (userdb, sieve dict): {counts}")
    # the userdb's lookup, and no dict query without a reply
    assert counts["nofollow@example.com"][0] >= 1 and counts["nofollow@example.com"][1] == 0, counts
    assert counts["later@example.com"][0] >= 1 and counts["later@example.com"][1] >= 1, counts


def test_a_new_vacation_replies_once_flushed(stack, follower):
    """A reply set while Dovecot runs (its userdb answer cached without sieve_before)
    answers the next delivery once the follower flushed the mailbox; cleared, it stops at
    the next delivery, flushed or not (the dict has no script for it any more)."""
    pg, postfix, _, _ = stack
    user = "away@example.com"
    deliver(postfix, user, "before the vacation")  # cached: no vacation
    before = len(follower.log_text())
    t = change(pg, "SELECT set_vacation(%s, 'Away now', 'back soon')", user)
    flushed = seconds_until(lambda: user in follower.log_text()[before:], t)
    assert flushed is not None, follower.log_text()
    deliver(postfix, user, "during the vacation")
    postfix.delivered("example.com/other/", "Away now")
    print(f"\nvacation set: flushed after {flushed} s, the next delivery replied")
    change(pg, "SELECT clear_vacation(%s)", user)
    deliver(postfix, user, "after clear_vacation", sender="quota@example.com")
    time.sleep(1)
    assert postfix.messages("example.com/quota/", "Away now") == []


def test_without_follower_a_new_vacation_waits(stack):
    """Without the follower a reply set after the mailbox's userdb answer was cached
    starts once the entry is gone: at the latest after auth_cache_ttl (15 minutes)."""
    pg, postfix, dovecot, _ = stack
    user = "slow@example.com"
    deliver(postfix, user, "slow before")
    change(pg, "SELECT set_vacation(%s, 'Slow reply', 'away')", user)
    try:
        deliver(postfix, user, "slow cached")
        time.sleep(1)
        assert postfix.messages("example.com/other/", "Slow reply") == []  # the cached answer: no dict
        dovecot.doveadm("auth", "cache", "flush", user)  # what the ttl (or the follower) does
        deliver(postfix, user, "slow flushed")
        postfix.delivered("example.com/other/", "Slow reply")
    finally:
        change(pg, "SELECT clear_vacation(%s)", user)


def test_a_failing_doveadm_is_one_line_and_exit_1(stack):
    """--once with a doveadm that cannot flush (Dovecot stopped, no permission) says so."""
    pg, _, _, root = stack
    r = subprocess.run([MAILBOOK, "dovecot", "follow", "--once", "--doveadm", "/bin/false", "--password-file",
                        str(root / "auth.pw"), "--dsn", f"host=127.0.0.1 port={pg.port} dbname=mail user=mailauth"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("mailbook: /bin/false auth cache flush failed (exit 1)"), r.stderr


def test_the_systemd_unit_verifies(tmp_path):
    unit = data_dir("dovecot") / "mailbook-dovecot-follow.service"
    text = unit.read_text()
    lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    assert lines["ExecStart"].split()[1:3] == ["dovecot", "follow"]
    assert "--password-file" in lines["ExecStart"] and "password=" not in lines["Environment"]
    assert "user=mailauth" in lines["Environment"] and lines["ProtectSystem"] == "strict"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # parsed above; systemd itself is not part of the test image
        return
    copy = tmp_path / unit.name
    copy.write_text(text.replace(lines["ExecStart"].split()[0], MAILBOOK))
    r = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr

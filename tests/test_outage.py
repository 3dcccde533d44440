"""PostgreSQL restarts and outages under SMTP load, with PgBouncer (`mailbook pgbouncer
install`) between the daemons and the server, as the README recommends; the restart also
without it ("direct"), as the baseline the README compares with.

A bounded loop of messages goes over loopback SMTP to a real Postfix while a real Dovecot
logs a user in again and again; PostgreSQL is restarted or stopped underneath. What is
asserted is what the README's "What we promise" table says; the figures it quotes are
printed here (pytest -s tests/test_outage.py shows them).

Needs root (Postfix does). PgBouncer and PostgreSQL run as the unprivileged postgres user.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from conftest import cli, require_program, run
from mailbook.postfix import compiled
from mailbook.demo.cluster import PrivateCluster, free_port
from mailbook.files import write_private
from mailbook.passwords import set_role_password
from mta import Dovecot, Postfix, install_dovecot, private_dir, remove

READER_PW, AUTH_PW = "reader-pw-outage", "auth-pw-outage"
USER, USER_PW = "foo@example.com", "foo outage secret"
# query_wait_timeout in pgbouncer/pgbouncer.ini: how long a lookup waits for PostgreSQL
QUERY_WAIT = 40
# Postfix 3.7's pgsql client skips a server for this long after one failed query
# (RETRY_CONN_INTV in dict_pgsql.c, compiled in)
POSTFIX_RETRY = 60
# After a long outage the first Postfix process to come back can be refused once more by
# PgBouncer (its role's pool still counts as failing) and skip it for another minute.
SMTP_BACK_WITHIN = 2 * POSTFIX_RETRY + 10
# Dovecot's SQL pool, with one server listed, reconnects at the latest 15 s after its
# last attempt (SQL_CONNECT_RESET_DELAY in lib-sql, compiled in)
LOGIN_BACK_WITHIN = 15 + 5


class PgBouncer:
    def __init__(self, root: Path, server: PrivateCluster):
        self.root, self.server = root, server
        self.port = free_port()
        self.ini = root / "pgbouncer.ini"
        self.binary = require_program("/usr/sbin/pgbouncer")

    def install_and_start(self, reader_pw: Path, auth_pw: Path) -> None:
        self.root.mkdir()
        shutil.chown(self.root, "postgres", "postgres")  # its log and pid file go here
        cli(["pgbouncer", "install", "--dest", str(self.root), "--server-port", str(self.server.port),
             "--listen-port", str(self.port), "--reader-password-file", str(reader_pw),
             "--auth-password-file", str(auth_pw), "--logfile", str(self.root / "pgbouncer.log"),
             "--pidfile", str(self.root / "pgbouncer.pid")], check=True)
        r = run(["runuser", "-u", "postgres", "--", self.binary, "-d", str(self.ini)])
        assert r.returncode == 0, r.stderr + self.log()

    def stop(self) -> None:
        pid = self.root / "pgbouncer.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGTERM)

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture(scope="module")
def stack(request):
    """PostgreSQL, Postfix and Dovecot; with request.param "pgbouncer" the daemons reach
    PostgreSQL through PgBouncer, with "direct" they connect to it themselves."""
    if os.geteuid() != 0:
        pytest.fail("the outage tests run Postfix and must run as root (scripts/test.sh under CI does)")
    root = private_dir("mailbook-outage-")
    pg = PrivateCluster(root / "pg")
    pg.start()
    cli(["init", "--dsn", pg.dsn()], check=True)
    cli(["migrate", "apply", "--dsn", pg.dsn("mail")], check=True)
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        set_role_password(conn, "mailreader", READER_PW)
        set_role_password(conn, "mailauth", AUTH_PW)
    with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_mailbox(%s, %s)", (USER, USER_PW))
    reader_pw, auth_pw = root / "reader.pw", root / "auth.pw"
    write_private(reader_pw, READER_PW + "\n")
    write_private(auth_pw, AUTH_PW + "\n")
    bouncer = None
    port = pg.port  # direct: the daemons talk to PostgreSQL itself, as before PgBouncer
    if request.param == "pgbouncer":  # the daemons talk to PgBouncer, never to PostgreSQL
        bouncer = PgBouncer(root / "pgbouncer", pg)
        bouncer.install_and_start(reader_pw, auth_pw)
        port = bouncer.port
    maps = root / "postfix-pgsql"
    cli(["maps", "install", "--dest", str(maps), "--port", str(port), "--password-file", str(reader_pw)],
        check=True)
    postfix = Postfix(root / "postfix", maps)
    postfix.start()
    dovecot = install_dovecot(root, postfix.mail, "--port", str(port), "--password-file", str(auth_pw))
    dovecot.start()
    yield pg, bouncer, postfix, dovecot
    dovecot.stop()
    postfix.stop()
    if bouncer:
        bouncer.stop()
    pg.destroy()
    remove(root)


@dataclass
class Load:
    """Messages in a loop over SMTP (two senders) and logins in a loop through Dovecot,
    each attempt recorded as (start, seconds taken, outcome)."""
    postfix: Postfix
    dovecot: Dovecot
    tag: str
    smtp: list[tuple[float, float, str]] = field(default_factory=list)
    logins: list[tuple[float, float, str]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _send(self, worker: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            subject = f"{self.tag}-{worker}-{n}"
            start = time.monotonic()
            try:
                with smtplib.SMTP("127.0.0.1", self.postfix.port, timeout=QUERY_WAIT + 30) as s:
                    s.ehlo("client.mailbook.test")
                    s.mail("sender@elsewhere.example")
                    code, _ = s.rcpt(USER)
                    if code == 250:
                        code, _ = s.data(f"From: sender@elsewhere.example\r\nTo: {USER}\r\n"
                                         f"Subject: {subject}\r\n\r\nduring an outage\r\n")
                    outcome = str(code)
            except (OSError, smtplib.SMTPException) as exc:
                outcome = f"error {exc!r}"
            self.smtp.append((start, time.monotonic() - start, outcome))
            if outcome == "250":
                self.accepted.append(subject)
            time.sleep(0.2)

    def _login(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            r = self.dovecot.auth_test(USER, USER_PW)
            self.logins.append((start, time.monotonic() - start, "ok" if r.returncode == 0 else f"rc {r.returncode}"))
            time.sleep(0.3)

    def __enter__(self) -> "Load":
        self._threads = [threading.Thread(target=self._send, args=(i,)) for i in range(2)]
        self._threads.append(threading.Thread(target=self._login))
        for t in self._threads:
            t.start()
        time.sleep(2)  # steady state before the fault
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=QUERY_WAIT + 60)

    def summary(self, fault_start: float, back: float) -> dict:
        """The figures the README quotes: what senders and logins saw around one fault."""
        def back_after(records, ok):  # until an attempt begun after the return succeeded
            done = [s + d for s, d, o in records if s >= back and o == ok]
            return round(min(done) - back, 1) if done else None
        held = [d for s, d, o in self.smtp if o == "250" and s < back and s + d > fault_start]
        return {
            "smtp_attempts": len(self.smtp),
            "smtp_451": sum(o == "451" for _, _, o in self.smtp),
            "smtp_5xx": sum(o.startswith("5") for _, _, o in self.smtp),
            "smtp_other": sorted({o for _, _, o in self.smtp} - {"250", "451"} - {o for _, _, o in self.smtp if o.startswith("5")}),
            "longest_wait_then_accepted_s": round(max(held), 1) if held else None,
            "smtp_back_after_s": back_after(self.smtp, "250"),
            "logins": len(self.logins),
            "logins_failed": sum(o != "ok" for _, _, o in self.logins),
            "login_back_after_s": back_after(self.logins, "ok"),
        }

    def wait_until_back(self, back: float, limit: float) -> None:
        deadline = back + limit
        while time.monotonic() < deadline:
            if any(s >= back and o == "250" for s, _, o in self.smtp) and \
                    any(s >= back and o == "ok" for s, _, o in self.logins):
                break
            time.sleep(0.5)
        time.sleep(2)


def delivered_subjects(postfix: Postfix) -> set[str]:
    new = postfix.mail / "example.com" / "foo" / "new"
    out = set()
    for f in new.iterdir() if new.is_dir() else []:
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("Subject: "):
                out.add(line.removeprefix("Subject: "))
    return out


def assert_all_delivered(postfix: Postfix, load: Load) -> None:
    deadline = time.monotonic() + 60
    missing = set(load.accepted)
    while missing and time.monotonic() < deadline:
        postfix.postqueue_flush()  # a delivery deferred during the fault is retried now
        missing = set(load.accepted) - delivered_subjects(postfix)
        time.sleep(0.5)
    assert not missing, f"{len(missing)} accepted messages were not delivered; log:\n{postfix.log_text()[-2000:]}"


@pytest.mark.parametrize("stack", ["pgbouncer"], indirect=True)
def test_through_the_pooler_only_the_service_roles_reach_only_the_mail_database(stack):
    pg, bouncer, postfix, dovecot = stack
    base = f"host=127.0.0.1 port={bouncer.port} connect_timeout=5"
    with psycopg.connect(f"{base} dbname=mail user=mailreader password={READER_PW}") as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("mailreader", "mail")
    for dsn, why in [(f"{base} dbname=mail user=postgres password=x", "superuser"),
                     (f"{base} dbname=mail user=mailadmin password=x", "admin role"),
                     (f"{base} dbname=mail user=mailauth password=wrong", "wrong password"),
                     (f"{base} dbname=postgres user=mailreader password={READER_PW}", "other database")]:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn).close()
            pytest.fail(f"{why} got in through PgBouncer")


def check(figures: dict, what: str, bouncer) -> None:
    """What holds for every fault, with or without PgBouncer: mail is deferred, never
    bounced; what was accepted is delivered (checked by the caller); both daemons come
    back by themselves, without a reload."""
    label = f"{what}, {'through PgBouncer' if bouncer else 'direct'}"
    print(f"\n{label}: {figures}")
    if os.environ.get("MAILBOOK_OUTAGE_LOG"):  # collecting figures over several runs
        with open(os.environ["MAILBOOK_OUTAGE_LOG"], "a") as f:
            f.write(json.dumps({"fault": label, **figures}) + "\n")
    assert figures["smtp_5xx"] == 0, "a 5xx during an outage would bounce mail"
    assert figures["smtp_other"] == [], figures  # only 250 or 451: no dropped sessions, no 421
    assert figures["smtp_back_after_s"] is not None and figures["smtp_back_after_s"] <= SMTP_BACK_WITHIN
    assert figures["login_back_after_s"] is not None and figures["login_back_after_s"] <= LOGIN_BACK_WITHIN


@pytest.mark.parametrize("stack", ["pgbouncer", "direct"], indirect=True)
def test_a_restart_under_smtp_load_bounces_nothing_and_every_accepted_message_arrives(stack):
    pg, bouncer, postfix, dovecot = stack
    with Load(postfix, dovecot, "restart") as load:
        fault = time.monotonic()
        pg.restart()
        back = time.monotonic()
        load.wait_until_back(back, SMTP_BACK_WITHIN)
    check(load.summary(fault, back), "restart", bouncer)
    assert len(load.accepted) >= 5
    assert_all_delivered(postfix, load)


@pytest.mark.parametrize("stack", ["pgbouncer"], indirect=True)
def test_a_20_second_outage_under_smtp_load_bounces_nothing_and_service_returns_alone(stack):
    pg, bouncer, postfix, dovecot = stack
    with Load(postfix, dovecot, "outage20") as load:
        fault = time.monotonic()
        pg.stop()
        time.sleep(20)
        pg.start()
        back = time.monotonic()
        load.wait_until_back(back, SMTP_BACK_WITHIN)
    check(load.summary(fault, back), "20 s outage", bouncer)
    assert_all_delivered(postfix, load)


@pytest.mark.parametrize("stack", ["pgbouncer"], indirect=True)
def test_an_outage_longer_than_query_wait_timeout_gives_451_never_5xx_and_service_returns_alone(stack):
    pg, bouncer, postfix, dovecot = stack
    with Load(postfix, dovecot, "outage50") as load:
        fault = time.monotonic()
        pg.stop()
        time.sleep(QUERY_WAIT + 10)
        pg.start()
        back = time.monotonic()
        load.wait_until_back(back, SMTP_BACK_WITHIN)
    figures = load.summary(fault, back)
    check(figures, f"{QUERY_WAIT + 10} s outage", bouncer)
    assert figures["smtp_451"] > 0  # PgBouncer gave up after query_wait_timeout: try later
    assert_all_delivered(postfix, load)


# -- compiled maps: Postfix without PostgreSQL, Dovecot on its cache ----------------------

# How long PostgreSQL stays stopped under load with compiled maps. CI: 75 s, longer than
# anything the pgsql: maps survive; the README's 5-minute row is this test run by hand
# with MAILBOOK_OUTAGE_SECONDS=300.
OUTAGE_SECONDS = int(os.environ.get("MAILBOOK_OUTAGE_SECONDS", "75"))
LATE, LATE_PW = "late@example.com", "late outage secret"


@pytest.fixture(scope="module")
def compiled_stack():
    """PostgreSQL; a Postfix whose maps are only the lmdb: tables `mailbook maps compile`
    wrote (main.cf as `maps postconf --compiled --delivery virtual` prints it; delivery by
    virtual(8), which needs nothing but the maps); a Dovecot with the shipped auth cache
    (`mailbook dovecot install` defaults), reaching PostgreSQL through PgBouncer."""
    if os.geteuid() != 0:
        pytest.fail("the outage tests run Postfix and must run as root (scripts/test.sh under CI does)")
    root = private_dir("mailbook-outage-compiled-")
    pg = PrivateCluster(root / "pg")
    pg.start()
    cli(["init", "--dsn", pg.dsn()], check=True)
    cli(["migrate", "apply", "--dsn", pg.dsn("mail")], check=True)
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        set_role_password(conn, "mailreader", READER_PW)
        set_role_password(conn, "mailauth", AUTH_PW)
    with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_mailbox(%s, %s)", (USER, USER_PW))
    reader_pw, auth_pw = root / "reader.pw", root / "auth.pw"
    write_private(reader_pw, READER_PW + "\n")
    write_private(auth_pw, AUTH_PW + "\n")
    bouncer = PgBouncer(root / "pgbouncer", pg)
    bouncer.install_and_start(reader_pw, auth_pw)
    dest = root / "compiled"
    compile_ = ["maps", "compile", "--dest", str(dest), "--dsn",
                f"host=127.0.0.1 port={pg.port} dbname=mail user=mailreader"]
    postfix = Postfix(root / "postfix", root / "no-pgsql-maps")
    postfix.configure()  # its main.cf is postmap's too
    cli([*compile_, "--config-dir", str(postfix.config)], env={"PGPASSWORD": READER_PW}, check=True)
    postfix.overrides = {k: v for k, v in compiled.postconf_settings(dest, "virtual")
                         if k in {m.parameter for m in compiled.MAPS}}
    postfix.start()
    dovecot = install_dovecot(root, postfix.mail, "--port", str(bouncer.port), "--password-file", str(auth_pw),
                              "--auth-cache-ttl", "900")  # the shipped default, said explicitly
    dovecot.start()
    recompile = lambda: cli([*compile_, "--config-dir", str(postfix.config)], env={"PGPASSWORD": READER_PW})  # noqa: E731
    yield pg, postfix, dovecot, dest, recompile
    dovecot.stop()
    postfix.stop()
    bouncer.stop()
    pg.destroy()
    remove(root)


def test_with_compiled_maps_postgresql_stopped_under_smtp_load_gives_no_4xx_no_5xx_and_logins_go_on(compiled_stack):
    pg, postfix, dovecot, dest, recompile = compiled_stack
    admin = pg.dsn("mail")
    with Load(postfix, dovecot, "compiled") as load:
        fault = time.monotonic()
        pg.stop()
        time.sleep(1)
        refused = cli(["mailbox", "add", LATE, "--dsn", admin, "--password-stdin"], input=LATE_PW + "\n",
                      env={"PGCONNECT_TIMEOUT": "5"})
        time.sleep(max(0.0, fault + OUTAGE_SECONDS - time.monotonic()))
        pg.start()
        back = time.monotonic()
        # provisioning works again at once, nothing restarted; a compile takes the change
        added = cli(["mailbox", "add", LATE, "--dsn", admin, "--password-stdin"], input=LATE_PW + "\n")
        compiled_again = recompile()
        time.sleep(3)
    figures = load.summary(fault, back)
    figures["outage_s"] = round(back - fault)
    check(figures, f"{figures['outage_s']} s outage, compiled maps", "compiled maps, Dovecot through PgBouncer")
    assert figures["smtp_451"] == 0, figures  # Postfix never asked PostgreSQL
    assert figures["logins_failed"] == 0, figures  # Dovecot answered from its cache
    assert figures["smtp_attempts"] >= OUTAGE_SECONDS  # two senders, one message each every 0.2 s or so
    assert_all_delivered(postfix, load)
    assert "pgsql" not in postfix.log_text()

    assert refused.exit_code == 1, refused
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mailbook: cannot connect to PostgreSQL"), refused.stderr
    assert "Traceback" not in refused.stderr
    assert added.exit_code == 0, added
    assert compiled_again.exit_code == 0, compiled_again
    assert LATE in (dest / "mailboxes").read_text()
    # Postfix notices the replaced table by itself (a daemon restarts when its table
    # changed); no reload
    deadline = time.monotonic() + 30
    while postfix.rcpt(LATE)[0] != 250 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert postfix.rcpt(LATE)[0] == 250
    postfix.send(LATE, "after the outage")
    postfix.delivered("example.com/late/", "after the outage")

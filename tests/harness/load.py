"""Load while a fault happens: messages in a loop over SMTP through a Postfix and logins
in a loop through a Dovecot, each attempt recorded (tests/test_outage.py, test_patroni.py);
and outage_stack(), the PostgreSQL, PgBouncer, Postfix and Dovecot it runs against."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from mailbook.demo.cluster import PrivateCluster
from mailbook.files import write_private

from .database import migrated_cluster
from .dovecot import Dovecot, install_dovecot
from .pgbouncer import PgBouncer
from .postfix import Postfix
from .process import cli, daemon_root, started

USER, USER_PW = "foo@example.com", "foo outage secret"
READER_PW, AUTH_PW = "reader-pw-outage", "auth-pw-outage"
# query_wait_timeout in pgbouncer/pgbouncer.ini: how long a lookup waits for PostgreSQL
QUERY_WAIT = 40


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

    def __enter__(self) -> Load:
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


# -- the stack a Load runs against -------------------------------------------------------

def one_mailbox(pg: PrivateCluster, root: Path) -> tuple[Path, Path]:
    """USER's mailbox on pg's mail database; mailreader's and mailauth's password files."""
    with psycopg.connect(pg.dsn("mail"), autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_mailbox(%s, %s)", (USER, USER_PW))
    reader_pw, auth_pw = root / "reader.pw", root / "auth.pw"
    write_private(reader_pw, READER_PW + "\n")
    write_private(auth_pw, AUTH_PW + "\n")
    return reader_pw, auth_pw


@dataclass
class Stack:
    root: Path
    pg: PrivateCluster
    bouncer: PgBouncer | None
    postfix: Postfix
    dovecot: Dovecot


@contextmanager
def outage_stack(prefix: str, pgbouncer: bool = True) -> Iterator[Stack]:
    """A PostgreSQL of its own (USER's mailbox), PgBouncer in front of it if pgbouncer (else
    the daemons connect to PostgreSQL themselves), a Postfix and a Dovecot, started in
    that order. Each is stopped in reverse order afterwards, and also when a later one
    fails to start: a Dovecot that refuses its configuration leaves no PgBouncer,
    Postfix or PostgreSQL running."""
    with ExitStack() as stop:
        root = stop.enter_context(daemon_root(prefix, "the outage tests run Postfix and"))
        pg = stop.enter_context(migrated_cluster(root / "pg", mailreader=READER_PW, mailauth=AUTH_PW))
        reader_pw, auth_pw = one_mailbox(pg, root)
        bouncer = None
        port = pg.port  # direct: the daemons talk to PostgreSQL itself
        if pgbouncer:  # the daemons talk to PgBouncer, never to PostgreSQL
            bouncer = PgBouncer(root / "pgbouncer", pg)
            stop.callback(bouncer.stop)
            bouncer.install_and_start(reader_pw, auth_pw)
            port = bouncer.port
        maps = root / "postfix-pgsql"
        cli(["maps", "install", "--dest", str(maps), "--port", str(port), "--password-file", str(reader_pw)],
            check=True)
        postfix = started(stop, Postfix(root / "postfix", maps))
        dovecot = started(stop, install_dovecot(root, postfix.mail, "--port", str(port), "--password-file", str(auth_pw)))
        yield Stack(root, pg, bouncer, postfix, dovecot)

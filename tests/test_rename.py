"""Renaming a mailbox (issue 33 item 5, migration 0216, sql/api/41_rename.sql) through the
real Postfix and Dovecot's LMTP, under SMTP load, and the CLI. Postfix resolves a
recipient when it accepts a message; one accepted for the old address before the rename
and delivered after it reaches LMTP as the old address, which Dovecot's user_query still
resolves (former_addresses) for 5 days: nothing bounces. The rules in SQL:
tests/pgtap/28_rename.sql; a customer's admin's reach: tests/test_admin_scopes.py."""

from __future__ import annotations

import imaplib
import re
import smtplib
import threading
import time
from pathlib import Path

import psycopg

from tests.harness.database import table_checksums
from tests.harness.dovecot import imap_login
from tests.harness.lmtp import admin_dsn, daemons, dovecot, postfix  # noqa: F401  (the fixtures)
from tests.harness.postfix import Postfix
from tests.harness.process import cli, wait_for

MOVER_PW = "mover secret pw"
# example.org has no catch-all (tests/harness/lmtp.py gives example.com one): a dropped
# address there is refused at RCPT, not taken by the catch-all
OLD, MIDDLE, NEW, ALIAS = "mover@example.org", "moved@example.com", "mover2@example.org", "movers@example.com"
MAILDIR = "example.org/mover/"


class Sender(threading.Thread):
    """Submits one message per SMTP session, in turn to each of targets (which the test
    may change), until stopped; records each RCPT reply (time, recipient, code) and the
    subjects Postfix accepted."""

    def __init__(self, pf: Postfix, targets: tuple[str, ...]):
        super().__init__(daemon=True)
        self.postfix, self.stop, self.targets = pf, threading.Event(), targets
        self.replies: list[tuple[float, str, int]] = []
        self.accepted: list[tuple[float, str, str]] = []  # (time, recipient, subject)
        self.errors: list[str] = []

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            targets = self.targets
            recipient = targets[n % len(targets)]
            subject = f"load-{n}"
            n += 1
            try:
                with self.postfix.smtp() as s:
                    s.mail("sender@elsewhere.example")
                    code, _ = s.rcpt(recipient)
                    self.replies.append((time.time(), recipient, code))
                    if code != 250:
                        continue
                    code, msg = s.data(f"From: sender@elsewhere.example\r\nTo: {recipient}\r\n"
                                       f"Subject: {subject}\r\n\r\nunder load\r\n")
                    if code == 250:
                        self.accepted.append((time.time(), recipient, subject))
                    else:
                        self.errors.append(f"{subject}: DATA {code} {msg!r}")
            except (OSError, smtplib.SMTPException) as exc:
                self.errors.append(f"{subject}: {exc!r}")
            time.sleep(0.02)

    def count(self, since: float = 0.0, recipient: str | None = None) -> int:
        return sum(1 for t, r, _ in self.accepted if t >= since and recipient in (None, r))


def subjects(maildir: Path) -> set[str]:
    """The Subject of every message in maildir's new/ and cur/."""
    found = set()
    for sub in ("new", "cur"):
        d = maildir / sub
        for f in d.iterdir() if d.is_dir() else ():
            for line in f.read_text(errors="replace").splitlines():
                if line.startswith("Subject: "):
                    found.add(line.removeprefix("Subject: "))
                    break
    return found


def hold_lmtp(pf: Postfix, hold: bool) -> None:
    """Postfix's defer_transports: with hold, mail for the lmtp transport (Dovecot's LMTP,
    virtual_transport) waits in the deferred queue, as when Dovecot is unreachable (Dovecot
    itself keeps running: Postfix's RCPT check asks its quota-status service); without,
    the queue is flushed."""
    if hold:
        pf.overrides["defer_transports"] = "lmtp"
    else:
        pf.overrides.pop("defer_transports", None)
    pf.configure()
    pf.reload()
    if not hold:
        pf.postqueue_flush()


def test_rename_under_smtp_load(postfix, dovecot, admin_dsn):  # noqa: F811
    """A sender keeps submitting to the old address, the next one and an alias while the
    mailbox is renamed twice: once into another domain with Dovecot delivering, once more
    (keeping the old address as an alias) while Postfix holds the mail for the old address
    in its deferred queue (defer_transports), released after the rename. Afterwards every accepted message is in the same
    maildir, none bounced; the dropped address is refused at RCPT (550), the kept one
    receives; the user logs in over IMAP as the new address with the same password and app
    password, not as the old one."""
    cli(["mailbox", "add", OLD, "--password-file", "-", "--dsn", admin_dsn], check=True, input=MOVER_PW + "\n")
    cli(["alias", "add", ALIAS, OLD, "--dsn", admin_dsn], check=True)
    r = cli(["mailbox", "app-password", "add", OLD, "phone", "--service", "imap", "--dsn", admin_dsn], check=True)
    [app_password] = r.stdout.split()
    mail = postfix.mail / MAILDIR

    sender = Sender(postfix, (OLD, ALIAS))
    sender.start()
    try:
        wait_for(lambda: len(subjects(mail)) >= 5, "deliveries before the first rename", timeout=60)
        # 1. into another domain, Dovecot delivering (messages in flight to LMTP as OLD)
        r = cli(["mailbox", "rename", OLD, MIDDLE, "--dsn", admin_dsn], check=True)
        assert r.stdout == f"renamed {OLD} to {MIDDLE} (maildir {MAILDIR}, kept)\n"
        first = time.time()
        sender.targets = (OLD, MIDDLE, ALIAS)
        wait_for(lambda: sender.count(first, MIDDLE) >= 3, "mail accepted for the new address", timeout=60)
        # 2. Postfix defers what it accepts for MIDDLE (as with LMTP unreachable); renamed meanwhile
        hold_lmtp(postfix, True)
        held = time.time()
        wait_for(lambda: sender.count(held, MIDDLE) >= 3, "mail for MIDDLE accepted while LMTP is held", timeout=60)
        wait_for(lambda: re.search(rf"to=<{re.escape(MIDDLE)}>.*status=deferred", postfix.log_text()),
                 "a deferral for the address about to be renamed", timeout=60)
        r = cli(["mailbox", "rename", MIDDLE, NEW, "--keep-alias", "--dsn", admin_dsn], check=True)
        assert r.stdout == f"renamed {MIDDLE} to {NEW} (maildir {MAILDIR}, kept); {MIDDLE} is an alias of it\n"
        second = time.time()
        wait_for(lambda: sender.count(second, MIDDLE) >= 3, "mail to the kept alias after the rename", timeout=60)
    finally:
        sender.stop.set()
        sender.join(timeout=60)
    hold_lmtp(postfix, False)

    assert not sender.errors, sender.errors[:5]
    accepted = {s for _, _, s in sender.accepted}
    try:
        wait_for(lambda: accepted <= subjects(mail), "every accepted message in the maildir", timeout=120)
    except AssertionError:
        missing = sorted(accepted - subjects(mail))
        raise AssertionError(f"{len(missing)} of {len(accepted)} missing: {missing[:10]}\n{postfix.log_text()[-6000:]}\n"
                             f"{dovecot.log_text()[-3000:]}") from None
    log = postfix.log_text()
    assert not [line for line in log.splitlines() if "status=bounced" in line], "nothing bounced"
    deferred_for_middle = {m.group(1) for m in re.finditer(rf"\]: (\w+): to=<{re.escape(MIDDLE)}>.*status=deferred", log)}
    assert deferred_for_middle, "mail for the renamed address waited in the queue across the rename"
    delivered_later = [m for m in re.finditer(rf"\]: (\w+): to=<{re.escape(MIDDLE)}>.*status=sent", log)
                       if m.group(1) in deferred_for_middle]
    assert delivered_later, "and LMTP took it as the old address after the rename"
    # the dropped address was refused once the first rename committed; the kept one was taken
    assert [c for t, r, c in sender.replies if r == OLD and t > first + 1] and \
        all(c == 550 for t, r, c in sender.replies if r == OLD and t > first + 1)
    assert all(c == 250 for t, r, c in sender.replies if r == ALIAS)
    assert all(c == 250 for t, r, c in sender.replies if r == MIDDLE and t > second)
    assert postfix.rcpt(OLD)[0] == 550 and postfix.rcpt(MIDDLE)[0] == 250 and postfix.rcpt(NEW)[0] == 250
    postfix.send(NEW, "to-the-new-address")
    postfix.delivered(MAILDIR, "to-the-new-address", timeout=40)

    assert imap_login(dovecot, NEW, MOVER_PW), dovecot.log_errors()
    assert imap_login(dovecot, NEW, app_password), dovecot.log_errors()
    assert dovecot.auth_test(OLD, MOVER_PW).returncode == 77, "the old address does not log in"
    with imaplib.IMAP4("127.0.0.1", dovecot.port) as imap:
        imap.login(NEW, MOVER_PW)
        imap.select("INBOX", readonly=True)
        _, data = imap.search(None, "ALL")
        assert len(data[0].split()) >= len(accepted) + 1
        imap.logout()


def test_rename_cli_refusals(admin_dsn):  # noqa: F811
    """`mailbook mailbox rename` refuses with one line naming the value, exit 1, and
    changes nothing: an unknown mailbox, a taken address, a domain not hosted."""
    cli(["mailbox", "add", "stay@example.com", "--password-file", "-", "--dsn", admin_dsn], check=True,
        input="stay secret pw\n")
    with psycopg.connect(admin_dsn) as conn:
        before = table_checksums(conn)
    for args, message in (
        (["nobody@example.com", "x@example.com"], 'mailbox "nobody@example.com" does not exist (SQLSTATE P0002)'),
        (["stay@example.com", "bar@example.com"], 'mailbox "bar@example.com" already exists (SQLSTATE 23505)'),
        (["stay@example.com", "team@example.com"], '"team@example.com" is already an alias (to "foo@example.com")'),
        (["stay@example.com", "stay@nothere.test"], 'domain "nothere.test" is not hosted here (SQLSTATE 23503)'),
    ):
        r = cli(["mailbox", "rename", *args, "--dsn", admin_dsn])
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and message in r.stderr, (args, r)
        assert "Traceback" not in r.stderr
    with psycopg.connect(admin_dsn) as conn:
        assert table_checksums(conn) == before

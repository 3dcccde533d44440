"""The LMTP stack as fixtures (tests/test_lmtp_delivery.py, test_quota_usage_bounds.py):
a mail database on the session's cluster, a Postfix that delivers with virtual(8) once
and is then switched to Dovecot's LMTP, quota_clone writing usage as mailquota.
A test module takes them with `from tests.harness.lmtp import admin_dsn, daemons, ...`."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from mailbook.files import write_private

from .database import mail_database, sql
from .dovecot import install_dovecot
from .postfix import Postfix, install_postfix
from .process import daemon_root, require_root, started

DB = "lmtp"
READER_PW = "reader-pw-lmtp"
AUTH_PW = "auth-pw-lmtp"
QUOTA_PW = "quota-pw-lmtp"
FOO_PW = "foo pw for lmtp"


@pytest.fixture(scope="module")
def admin_dsn(cluster):
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW, mailauth=AUTH_PW, mailquota=QUOTA_PW) as dsn:
        sql(dsn, "SELECT add_domain('example.com')")
        sql(dsn, "SELECT add_domain('example.org')")
        sql(dsn, "SELECT add_alias_domain('example.net', 'example.com')")
        for box in ("foo", "bar", "sleepy", "catchall", "full", "list", "bulk", "robot", "later"):
            sql(dsn, "SELECT add_mailbox(%s, %s)", f"{box}@example.com", FOO_PW if box == "foo" else f"{box} pw pw")
        sql(dsn, "SELECT add_mailbox('baz@example.org', 'baz pw pw')")
        sql(dsn, "SELECT set_mailbox_active('sleepy@example.com', false)")
        sql(dsn, "SELECT add_alias('team@example.com', 'foo@example.com')")
        sql(dsn, "SELECT add_alias('@example.com', 'catchall@example.com')")
        yield dsn


@pytest.fixture(scope="module")
def daemons(admin_dsn, cluster):
    """A Postfix delivering with virtual(8) gets one message to foo; then the same
    Postfix (same maildirs) is switched to LMTP and Dovecot started with the LMTP include."""
    with ExitStack() as stop:  # in reverse, also when a start fails half-way
        root = stop.enter_context(daemon_root("mailbook-lmtp-"))
        auth_pw, quota_pw = root / "auth.pw", root / "quota.pw"
        write_private(auth_pw, AUTH_PW + "\n")
        write_private(quota_pw, QUOTA_PW + "\n")
        pf = started(stop, install_postfix(root, cluster, DB, READER_PW, delivery="virtual"))
        pf.send("foo@example.com", "delivered by virtual(8) before the switch")
        before = pf.delivered("example.com/foo/", "delivered by virtual(8) before the switch")
        pf.stop()
        pf.delivery = "lmtp"
        pf.start()  # its stop is on the stack already
        dovecot = started(stop, install_dovecot(root, pf.mail, "--port", str(cluster.port), "--dbname", DB,
                                                "--password-file", str(auth_pw), "--quota-password-file",
                                                str(quota_pw), postfix=pf))
        yield pf, dovecot, before


@pytest.fixture(scope="module")
def postfix(daemons) -> Postfix:
    return daemons[0]


@pytest.fixture(scope="module")
def dovecot(daemons):
    return daemons[1]


def usage(dsn: str, email: str):
    rows = sql(dsn, "SELECT used_bytes, used_messages FROM mailboxes WHERE email = %s", email)
    return rows[0] if rows else None

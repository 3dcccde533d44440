"""Last logins (issue 33, migration 0210) through a real Dovecot: the last_login plugin
that `mailbook dovecot install` wires (last-login-mailbook.conf.ext, the map in
dovecot-dict-quota.conf.ext) writes each IMAP login's service and client address into
last_logins as mailquota; a refused login writes nothing; `mailbook mailbox stale` lists
the mailboxes nobody logs in to. The bounds and privileges: tests/pgtap/23_last_login.sql.

Needs root (the LMTP stack of tests/harness/lmtp.py: Postfix, Dovecot, quota_clone's dict).
"""

from __future__ import annotations

import imaplib
import json
import socket
import subprocess
from pathlib import Path

from mailbook.dovecot import LmtpSetup, dovecot_files
from tests.harness.database import sql
from tests.harness.dovecot import imap_login
from tests.harness.lmtp import FOO_PW, admin_dsn, daemons, dovecot, postfix  # noqa: F401  (the fixtures)
from tests.harness.process import cli, wait_for


def logins(dsn: str, email: str) -> list[tuple]:
    return sql(dsn, "SELECT service, host(remote_ip), last_login > now() - interval '1 minute'"
                    " FROM last_logins WHERE email = %s ORDER BY service", email)


class SourceIMAP(imaplib.IMAP4):
    """IMAP from a chosen loopback source address (127.0.0.2): a client elsewhere."""

    def __init__(self, port: int, source: str):
        self.source = source
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def test_install_wires_last_login(dovecot):
    """The include is installed and included; doveconf -n shows the plugin for imap and its dict."""
    conf = dovecot.sql_conf.parent
    assert f"!include {conf / 'last-login-mailbook.conf.ext'}" in (conf / "99-mailbook.conf").read_text()
    shown = subprocess.run(["doveconf", "-c", str(dovecot.conf), "-n"], capture_output=True, text=True, check=True).stdout
    assert "quota_clone last_login" in shown or "last_login = yes" in shown, shown[-2000:]  # 2.3 | 2.4
    # 2.3 names the dict in plugin { }; 2.4 in a last_login { dict proxy { } } block
    assert "last_login_dict = proxy::mailbook_quota" in shown or "last_login {" in shown, shown[-2000:]


def test_imap_login_records_service_and_address(dovecot, admin_dsn):
    """A real IMAP login writes the mailbox's imap row with 127.0.0.1; the mailboxes view
    and `mailbox list` show it."""
    assert imap_login(dovecot, "foo@example.com", FOO_PW)
    rows = wait_for(lambda: logins(admin_dsn, "foo@example.com"), "foo's login row")
    assert rows == [("imap", "127.0.0.1", True)], dovecot.log_errors()
    listed = json.loads(cli(["mailbox", "list", "--json", "--dsn", admin_dsn], check=True).stdout)
    (foo,) = [m for m in listed if m["email"] == "foo@example.com"]
    assert foo["last_login"] is not None


def test_login_from_elsewhere_replaces_the_address(dovecot, admin_dsn):
    """A login from another address updates the same row (one per mailbox and service)."""
    assert imap_login(dovecot, "bar@example.com", "bar pw pw")
    wait_for(lambda: logins(admin_dsn, "bar@example.com"), "bar's first login")
    imap = SourceIMAP(dovecot.port, "127.0.0.2")
    try:
        imap.login("bar@example.com", "bar pw pw")
    finally:
        imap.logout()
    wait_for(lambda: logins(admin_dsn, "bar@example.com") == [("imap", "127.0.0.2", True)],
             "bar's row with the new address")


def test_refused_login_writes_nothing(dovecot, admin_dsn):
    """A wrong password writes no row; a good login after it (the same dict queue) does."""
    assert not imap_login(dovecot, "baz@example.org", "not the password")
    assert imap_login(dovecot, "list@example.com", "list pw pw")
    wait_for(lambda: logins(admin_dsn, "list@example.com"), "list's login row")
    assert logins(admin_dsn, "baz@example.org") == []


def test_stale_lists_never_logged_in(dovecot, admin_dsn):
    """`mailbox stale --days 180` lists a mailbox never logged in to, not one used now."""
    assert imap_login(dovecot, "robot@example.com", "robot pw pw")
    wait_for(lambda: logins(admin_dsn, "robot@example.com"), "robot's login row")
    stale = json.loads(cli(["mailbox", "stale", "--days", "180", "--json", "--dsn", admin_dsn], check=True).stdout)
    emails = [m["email"] for m in stale]
    assert "later@example.com" in emails and "robot@example.com" not in emails
    assert all(m["last_login"] is None for m in stale)  # none older than 180 days here
    bad = cli(["mailbox", "stale", "--days", "0", "--dsn", admin_dsn])
    assert bad.exit_code == 1 and "1 or more, not 0" in bad.stderr and bad.stderr.count("\n") == 1


def test_no_last_login_leaves_it_out(tmp_path: Path):
    """--no-last-login (LmtpSetup.last_login False) writes no include, for 2.3 and 2.4."""
    for version in ("2.3", "2.4"):
        for on in (True, False):
            files = dovecot_files(tmp_path / "dovecot-sql.conf.ext", tmp_path / "conf.d", "dbname=mail user=mailauth",
                                  "/home/mail", LmtpSetup("dbname=mail user=mailquota", last_login=on), version=version)
            main = files[tmp_path / "conf.d" / "99-mailbook.conf"]
            assert ("last-login-mailbook.conf.ext" in main) is on, (version, on)
            assert (tmp_path / "conf.d" / "last-login-mailbook.conf.ext" in files) is on, (version, on)

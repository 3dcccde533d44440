"""Dovecot's password_query as shipped (dovecot/dovecot-sql.conf.ext, installed by
`mailbook dovecot install`) lets a mailbox log in only to a service mailbook knows and
the mailbox may use (dovecot_service_allowed(), sql/api/45_services.sql): a mailbox
with every service off is refused by a real Dovecot 2.3 for imap, pop3, smtp,
submission and sieve, and for every other service name too (doveadm, lmtp, names
Dovecot may add), where 1.0 let it in (issue 28). A mailbox moved in from vmm with
every service off, which vmm refuses everywhere, is refused everywhere here too. Such a
mailbox still receives mail: the userdb answers it for LMTP.

Needs root (Dovecot's mail processes switch users).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from mailbook.files import write_private
from tests.harness.database import mail_database
from tests.harness.dovecot import install_dovecot
from tests.harness.peers import Vmm, drop_source, source_database
from tests.harness.postfix import VMAIL_GID, VMAIL_UID
from tests.harness.process import cli, private_dir, remove, require_root

TARGET, AUTH_PW = "svc_allow", "svc-auth-pw"
SOURCE, OWNER, OWNER_PW = "svc_vmm_source", "svc_vmm_owner", "svc-vmm-owner-pw"
MAILBOOK_SERVICES = ["imap", "pop3", "smtp", "submission", "sieve"]
# Dovecot 2.3 asks the passdb with these too: `doveadm auth test` (doveadm), LMTP proxying
# (lmtp), and a name mailbook has never heard of
OTHER_SERVICES = ["doveadm", "lmtp", "imap-urlauth", "x-unknown"]
USERS = {  # address: password; "off" has every service off, "on" none
    "on@example.com": "on secret",
    "off@example.com": "off secret",
    "gone@example.net": "gone-pw-1",  # from vmm, every service off there
    "kept@example.net": "kept-pw-1",  # from vmm, every service on there
}


@pytest.fixture(scope="module")
def dovecot(cluster):
    require_root("the service allow-list tests")
    root = private_dir("mailbook-services-")
    base = Path(tempfile.mkdtemp(prefix="vmm", dir="/var/tmp"))  # vmm's domaindir is varchar(40)
    source_database(cluster, SOURCE, OWNER, OWNER_PW)
    dc = None
    try:
        vmm = Vmm(root, cluster.port, SOURCE, OWNER, OWNER_PW, base)
        vmm("domainadd", "example.net")
        for address in ("gone@example.net", "kept@example.net"):
            vmm("useradd", address, "-p", USERS[address])
        vmm("userservices", "gone@example.net", "-d", "smtp", "pop3", "imap", "sieve")
        with mail_database(cluster, TARGET, mailauth=AUTH_PW) as dsn:
            cli(["import", "--from", "vmm", "--source-dsn", cluster.dsn(SOURCE), "--dsn", dsn,
                 "--vmail-owner", f"{VMAIL_UID}:{VMAIL_GID}"], check=True)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET ROLE mailadmin")
                conn.execute("SELECT add_domain('example.com')")
                for address in ("on@example.com", "off@example.com"):
                    conn.execute("SELECT add_mailbox(%s, %s)", (address, USERS[address]))
                for service in MAILBOOK_SERVICES:
                    conn.execute("SELECT set_mailbox_service('off@example.com', %s, false)", (service,))
                imported = conn.execute("SELECT disabled_services FROM users WHERE email = 'gone@example.net'").fetchone()
                assert sorted(imported[0]) == sorted(MAILBOOK_SERVICES), imported
            write_private(root / "auth.pw", AUTH_PW + "\n")
            mail = root / "mail"
            mail.mkdir()
            dc = install_dovecot(root, mail, "--port", str(cluster.port), "--dbname", TARGET,
                                 "--password-file", str(root / "auth.pw"))
            dc.start()
            yield dc
    finally:
        if dc:
            dc.stop()
        drop_source(cluster, SOURCE, OWNER)
        remove(root)
        remove(base)


def login(dovecot, user: str, service: str | None) -> int:
    """doveadm auth test's exit code for user's right password on service (None: doveadm's
    own default, service doveadm): 0 logged in, 77 refused."""
    return dovecot.auth_test(user, USERS[user], service).returncode


@pytest.mark.parametrize("user", ["off@example.com", "gone@example.net"])
@pytest.mark.parametrize("service", MAILBOOK_SERVICES + OTHER_SERVICES + [None])
def test_every_service_off_refused_everywhere(dovecot, user, service):
    """A mailbox with every service off (set with mailbook, or moved in from vmm that way)
    is refused for each of mailbook's services and for any other name, doveadm auth
    test's own default included."""
    assert login(dovecot, user, service) == 77, dovecot.log_text()[-2000:]


@pytest.mark.parametrize("user", ["on@example.com", "kept@example.net"])
def test_services_on_log_in_but_not_to_unknown_names(dovecot, user):
    """A mailbox with its services on logs in to each of them and to doveadm (the admin's
    check), never to a service name mailbook does not know."""
    for service in MAILBOOK_SERVICES + ["doveadm", None]:
        assert login(dovecot, user, service) == 0, (service, dovecot.log_text()[-2000:])
    for service in ["lmtp", "imap-urlauth", "x-unknown"]:
        assert login(dovecot, user, service) == 77, service


def test_every_service_off_still_receives_mail(dovecot):
    """The userdb answers for a mailbox with every service off (LMTP delivers to it: it
    still receives mail), though the passdb refuses it."""
    for user in ("off@example.com", "gone@example.net"):
        r = dovecot.doveadm("user", "-x", "service=lmtp", user)
        assert r.returncode == 0 and "home" in r.stdout, (r.stdout, r.stderr)

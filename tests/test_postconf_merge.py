"""`mailbook maps postconf | sh` on a Postfix that already has a main.cf (issue 31): the
host's own mail keeps working and the admin's restrictions stay. A real private Postfix,
the real maps against PostgreSQL; the printed script is run by sh as an admin would."""

from __future__ import annotations

import os
import subprocess
import time

import psycopg
import pytest

from mailbook.files import write_private
from tests.harness.database import mail_database
from tests.harness.postfix import VMAIL_GID, VMAIL_UID, Postfix
from tests.harness.process import cli, private_dir, remove, require_root, run

DB = "postconfmerge"
READER_PW = "reader-pw-for-merge"
# a main.cf as an admin has it before mailbook: the stock mydestination (plus a domain
# that is now hosted by mailbook), anti-spam checks of their own
RECIPIENT = "permit_mynetworks, reject_non_fqdn_recipient, reject_unauth_pipelining"
RELAY = "permit_mynetworks, reject_non_fqdn_sender, defer_unauth_destination"


@pytest.fixture(scope="module")
def stack(cluster):
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW) as dsn:  # role passwords reset after
        yield from _stack(cluster, dsn)


def _stack(cluster, dsn):
    root = private_dir("mailbook-merge-")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('example.com')")
        conn.execute("SELECT add_mailbox('foo@example.com', 'foo secret')")
    write_private(root / "reader.pw", READER_PW + "\n")
    maps = root / "maps"
    cli(["maps", "install", "--dest", str(maps), "--port", str(cluster.port), "--dbname", DB,
         "--password-file", str(root / "reader.pw")], check=True)
    spool = root / "spool"  # local(8)'s mailboxes (mail to root), not the system's /var/mail
    spool.mkdir()
    os.chmod(spool, 0o1777)
    pf = Postfix(root / "postfix", maps, settings={
        "mydestination": "$myhostname, example.com, localhost.$mydomain, localhost",
        "smtpd_recipient_restrictions": RECIPIENT,
        "smtpd_relay_restrictions": RELAY,
        "mail_spool_directory": str(spool),
    })
    try:
        pf.configure()
        pf.configure = lambda: None  # from here on main.cf is what the admin's commands make it
        yield pf, spool
    finally:
        pf.stop()
        remove(root)


def postconf(pf, *names):
    r = run(["/usr/sbin/postconf", "-c", str(pf.config), "-h", *names])
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def maps_postconf(pf, *args):
    return cli(["maps", "postconf", "--dest", str(pf.maps), "--config-dir", str(pf.config),
                "--vmail-user", "nobody", "--vmail-group", "nogroup", *args])


def test_postconf_merge_keeps_local_mail(stack):
    """After `maps postconf --config-dir DIR | sh`, mydestination still has the host's
    names (a hosted domain is dropped from it), the admin's restrictions stay with
    mailbook's added, `sendmail root` is delivered locally, and a hosted address still
    goes to virtual(8) with the vmail ids looked up by name."""
    pf, spool = stack
    r = maps_postconf(pf, "--delivery", "virtual")
    assert r.exit_code == 0, r.stderr
    assert "# mydestination: drops example.com" in r.stdout, r.stdout
    assert f"# smtpd_recipient_restrictions: keeps {RECIPIENT}" in r.stdout, r.stdout
    assert f"-e 'virtual_uid_maps = static:{VMAIL_UID}'" in r.stdout
    applied = subprocess.run(["sh", "-e"], input=r.stdout, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    assert postconf(pf, "mydestination", "smtpd_recipient_restrictions", "smtpd_relay_restrictions",
                    "virtual_uid_maps", "virtual_gid_maps") == [
        "$myhostname, localhost.$mydomain, localhost",
        f"{RECIPIENT}, reject_unlisted_recipient",
        RELAY,
        f"static:{VMAIL_UID}", f"static:{VMAIL_GID}"]
    # where the hosted mail goes is the admin's to choose; here, inside the test directory
    pf.mail.mkdir()
    os.chown(pf.mail, VMAIL_UID, VMAIL_GID)
    assert run(["/usr/sbin/postconf", "-c", str(pf.config), "-e", f"virtual_mailbox_base = {pf.mail}"]).returncode == 0
    pf.start()

    sent = subprocess.run(["/usr/sbin/sendmail", "-C", str(pf.config), "root"],
                          input="Subject: cron output\n\nfrom cron\n", capture_output=True, text=True)
    assert sent.returncode == 0, sent.stderr
    pf.logged(r"to=<root@mx\.mailbook\.test>.*relay=local.*status=sent", timeout=30)
    deadline = time.time() + 10
    while not (spool / "root").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert "Subject: cron output" in (spool / "root").read_text()

    pf.send("foo@example.com", "to a hosted mailbox")
    pf.delivered("example.com/foo/", "to a hosted mailbox")
    pf.logged(r"to=<foo@example\.com>.*relay=virtual.*status=sent")
    assert pf.rcpt("nobody-here@example.com")[0] == 550


def test_postconf_merge_twice_changes_nothing(stack):
    """Run again on what it made: the shared parameters are left as they are; the LMTP
    mode adds its quota check after mailbook's first one, keeping the admin's."""
    pf, _ = stack
    again = maps_postconf(pf, "--delivery", "virtual")
    assert again.exit_code == 0, again.stderr
    assert not [line for line in again.stdout.splitlines()
                if line.split("'")[-2:-1] and line.split("'")[1].split(" =")[0]
                in ("mydestination", "smtpd_recipient_restrictions", "smtpd_relay_restrictions")], again.stdout
    assert "# mydestination: kept as it is" in again.stdout
    lmtp = maps_postconf(pf)
    assert (f"-e 'smtpd_recipient_restrictions = {RECIPIENT}, reject_unlisted_recipient,"
            " check_policy_service unix:private/quota-status'") in lmtp.stdout, lmtp.stdout


def test_postconf_vmail_user_missing(stack):
    """A vmail user that does not exist is one line naming it and how to create it."""
    pf, _ = stack
    r = cli(["maps", "postconf", "--config-dir", str(pf.config), "--vmail-user", "no-such-vmail"])
    assert r.exit_code == 1 and r.stdout == "", r.stdout
    assert "no user 'no-such-vmail'" in r.stderr and "adduser --system" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1

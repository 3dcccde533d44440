"""Submission wired as an admin wires it (issue 31): `mailbook maps postconf | sh` adds the
submission (587, STARTTLS required) and submissions (465, implicit TLS) services and the
certificate to a Postfix, `mailbook dovecot install` writes the auth listener they log in
through; then real Postfix and Dovecot, with a test certificate made by openssl. The only
change to what was printed: each service listens on a loopback port of the test's own
instead of 587 and 465.

Also the merge: an admin's own submission service keeps the options mailbook does not
set, the ones that change are named, a certificate already in main.cf stays, a rerun
changes nothing, and --no-submission leaves it all out."""

from __future__ import annotations

import os
import re
import smtplib
import subprocess
from contextlib import ExitStack
from pathlib import Path

import pytest

from mailbook.demo.cluster import free_port
from mailbook.files import write_private
from tests.harness.database import mail_database, sql
from tests.harness.dovecot import install_dovecot
from tests.harness.postfix import VMAIL_GID, VMAIL_UID, Postfix, master_cf
from tests.harness.process import cli, daemon_root, private_dir, remove, require_root, run, started
from tests.harness.tls import certificate, client_context

DB = "submissiontls"
READER_PW = "reader-pw-submission"
AUTH_PW = "auth-pw-submission"
FOO_PW = "foo's tls password"


def postconf_script(config: Path, maps: Path, *args: str) -> str:
    r = cli(["maps", "postconf", "--dest", str(maps), "--config-dir", str(config), "--delivery", "virtual",
             "--vmail-user", "nobody", "--vmail-group", "nogroup", *args])
    assert r.exit_code == 0, r.stderr
    return r.stdout


def sh(script: str) -> None:
    applied = subprocess.run(["sh", "-e"], input=script, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr


def commands(script: str, word: str) -> list[str]:
    """The lines of script that change something about word (a service, a parameter)."""
    return [line for line in script.splitlines() if not line.startswith("#") and word in line]


@pytest.fixture(scope="module")
def wired(cluster):
    """A Postfix wired by `maps postconf ... | sh` (main.cf empty but for the instance's
    own places) and a Dovecot from `dovecot install` with the same certificate."""
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW, mailauth=AUTH_PW) as dsn, ExitStack() as stop:
        sql(dsn, "SELECT add_domain('example.com')")
        sql(dsn, "SELECT add_mailbox('foo@example.com', %s)", FOO_PW)
        sql(dsn, "SELECT add_mailbox('bar@example.com', 'bar pw bar')")
        root = stop.enter_context(daemon_root("mailbook-sub-"))
        write_private(root / "reader.pw", READER_PW + "\n")
        write_private(root / "auth.pw", AUTH_PW + "\n")
        maps = root / "maps"
        cli(["maps", "install", "--dest", str(maps), "--port", str(cluster.port), "--dbname", DB,
             "--password-file", str(root / "reader.pw")], check=True)
        pf = Postfix(root / "postfix", maps, settings={})
        pf.configure()
        cert, key = certificate(pf.root)
        script = postconf_script(pf.config, maps, "--tls-cert", str(cert), "--tls-key", str(key))
        sh(script)
        again = postconf_script(pf.config, maps, "--tls-cert", str(cert), "--tls-key", str(key))
        # the test's own places: maildirs, and loopback ports instead of 587 and 465
        pf.mail.mkdir()
        os.chown(pf.mail, VMAIL_UID, VMAIL_GID)
        assert run(["/usr/sbin/postconf", "-c", str(pf.config), "-e", f"virtual_mailbox_base = {pf.mail}"]).returncode == 0
        pf.submission_port, pf.submissions_port = free_port(), free_port()
        master = pf.config / "master.cf"
        master.write_text(re.sub(r"^submission(s?) ", lambda m: f"127.0.0.1:{pf.submissions_port if m.group(1) else pf.submission_port} ",
                                 master.read_text(), flags=re.M))
        pf.configure = lambda: None  # main.cf and master.cf are what the admin's commands made
        started(stop, pf)
        dovecot = install_dovecot(root, pf.mail, "--port", str(cluster.port), "--dbname", DB,
                                  "--password-file", str(root / "auth.pw"), postfix=pf)
        started(stop, dovecot)
        yield pf, script, again


def test_postconf_prints_submission(wired):
    """The printed script adds both services with SASL through Dovecot, the sender checks
    and the certificate; run again, it changes none of them."""
    pf, script, again = wired
    assert f"postconf -c {pf.config} -M 'submission/inet=submission inet n - n - - smtpd'" in script, script
    assert "-M 'submissions/inet=submissions inet n - n - - smtpd'" in script
    for option in ("submission/inet/smtpd_tls_security_level=encrypt", "submissions/inet/smtpd_tls_wrappermode=yes",
                   "submission/inet/smtpd_sasl_type=dovecot", "submission/inet/smtpd_sasl_path=private/auth",
                   f"submission/inet/smtpd_sender_login_maps=proxy:pgsql:{pf.maps}/sender-login.cf",
                   "submission/inet/smtpd_sender_restrictions=reject_sender_login_mismatch,permit_sasl_authenticated,reject",
                   "submission/inet/smtpd_relay_restrictions=permit_sasl_authenticated,reject"):
        assert f" -P {option}" in script, option
    assert f"-e 'smtpd_tls_cert_file = {pf.root}/tls-cert.pem'" in script
    for word in ("submission/inet", "submissions/inet", "smtpd_tls_"):
        assert commands(again, word) == [], again
    assert "# submission/inet: kept as it is: it has mailbook's options" in again


def test_no_auth_before_starttls(wired):
    """On 587, AUTH is not offered and MAIL is refused until STARTTLS; then AUTH PLAIN is."""
    pf, _, _ = wired
    with smtplib.SMTP("127.0.0.1", pf.submission_port, timeout=30) as s:
        s.ehlo("client.mailbook.test")
        assert s.has_extn("starttls") and not s.has_extn("auth"), s.esmtp_features
        code, msg = s.mail("foo@example.com")
        assert code == 530 and b"STARTTLS" in msg, (code, msg)
        s.starttls(context=client_context(pf.tls_cert))  # the name (127.0.0.1) and the test cert checked
        s.ehlo("client.mailbook.test")
        assert "PLAIN" in s.esmtp_features["auth"].split(), s.esmtp_features


def test_starttls_login_and_send_as(wired):
    """After STARTTLS: a wrong password 535, another mailbox's address 553, one's own queued."""
    pf, _, _ = wired
    code, _ = pf.submit("foo@example.com", "not foo's password", "foo@example.com", "bar@example.com")
    assert code == 535
    code, msg = pf.submit("foo@example.com", FOO_PW, "bar@example.com", "bar@example.com")
    assert code == 553 and "not owned by user foo@example.com" in msg, (code, msg)
    code, msg = pf.submit("foo@example.com", FOO_PW, "foo@example.com", "bar@example.com", subject="over 587")
    assert code == 250 and "queued as" in msg, (code, msg)
    pf.delivered("example.com/bar/", "over 587")


def test_implicit_tls_login(wired):
    """On 465 (implicit TLS), the same login and the same sender checks."""
    pf, _, _ = wired
    code, msg = pf.submit("foo@example.com", FOO_PW, "foo@example.com", "bar@example.com", subject="over 465",
                          implicit_tls=True)
    assert code == 250 and "queued as" in msg, (code, msg)
    assert pf.submit("foo@example.com", FOO_PW, "bar@example.com", "bar@example.com", implicit_tls=True)[0] == 553
    assert pf.submit("foo@example.com", "wrong", "foo@example.com", "bar@example.com", implicit_tls=True)[0] == 535
    pf.delivered("example.com/bar/", "over 465")


@pytest.fixture
def admin_postfix():
    """A Postfix configuration (not started) whose admin already has a submission service
    with options of their own and a certificate in main.cf."""
    require_root()
    root = private_dir("mailbook-sub-merge-")
    try:
        config = root / "etc"
        config.mkdir()
        (config / "main.cf").write_text("smtpd_tls_cert_file = /etc/ssl/real/fullchain.pem\n"
                                        "smtpd_tls_key_file = /etc/ssl/real/privkey.pem\n")
        (config / "master.cf").write_text(master_cf(25) + "submission inet n - y - - smtpd\n"
                                          "  -o smtpd_tls_security_level=may\n"
                                          "  -o milter_macro_daemon_name=ORIGINATING\n")
        yield config, root / "maps"
    finally:
        remove(root)


def test_merge_keeps_admin_options(admin_postfix):
    """An existing submission service keeps its line and the options mailbook does not set
    (said so), one that changes says what it was, main.cf's certificate stays without
    --tls-cert; after the script, a rerun changes nothing."""
    config, maps = admin_postfix
    script = postconf_script(config, maps)
    assert "# submission/inet: keeps milter_macro_daemon_name=ORIGINATING" in script, script
    assert "# submission/inet: smtpd_tls_security_level was may, becomes encrypt" in script
    assert "# smtpd_tls_cert_file: kept as it is (/etc/ssl/real/fullchain.pem)" in script
    assert commands(script, "-M 'submission/inet") == [] and commands(script, "smtpd_tls_cert_file") == []
    sh(script)
    r = run(["/usr/sbin/postconf", "-c", str(config), "-M", "submission/inet"])
    assert r.stdout.split()[:7] == ["submission", "inet", "n", "-", "y", "-", "-"], r.stdout
    r = run(["/usr/sbin/postconf", "-c", str(config), "-P"])
    assert "submission/inet/milter_macro_daemon_name = ORIGINATING" in r.stdout
    assert "submission/inet/smtpd_tls_security_level = encrypt" in r.stdout
    assert "submissions/inet/smtpd_tls_wrappermode = yes" in r.stdout
    again = postconf_script(config, maps)
    assert commands(again, "submission") == [] and commands(again, "smtpd_tls_") == [], again


def test_no_submission_leaves_it_out(admin_postfix):
    """--no-submission (a receive-only MX) prints no service and no certificate; a
    certificate given with it is refused in one line."""
    config, maps = admin_postfix
    script = postconf_script(config, maps, "--no-submission")
    assert commands(script, "submission") == [] and "smtpd_tls_" not in script, script
    r = cli(["maps", "postconf", "--config-dir", str(config), "--no-submission", "--tls-cert", "/a.pem",
             "--tls-key", "/a.key"])
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1 and "--no-submission" in r.stderr, r.stderr

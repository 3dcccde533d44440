"""`mailbook doctor --live` against a real stack: PostgreSQL, Postfix delivering through
Dovecot's LMTP with the quota-status check at RCPT and a submission service (SASL through
Dovecot, TLS with a certificate made here), Dovecot with the shipped auth cache and
`mailbook dovecot follow` keeping it current.

Wired as documented, every live check passes (exit 0). Each broken piece is one failing
line saying what to run, exit 1: Dovecot stopped, a conf.d file read after mailbook's
include setting Sieve back to ~/.dovecot.sieve, a map file pointing at another database,
a wrong canary password, no follower for the auth cache, a missing certificate (Postfix's or
Dovecot's), Dovecot's ssl = no. No DKIM key is active here: the signer check says DKIM
is not in use (tests/test_dkim.py checks a signer). What Postfix says is printed escaped. Needs root (Postfix and Dovecot do).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from mailbook.files import write_private
from tests.harness.database import mail_database, sql
from tests.harness.dovecot import install_dovecot
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, daemon_root, require_root, run, started

DB = "doctorlive"
READER_PW, AUTH_PW, QUOTA_PW = "reader-pw-doctor-live", "auth-pw-doctor-live", "quota-pw-doctor-live"
CANARY, CANARY_PW = "canary@example.com", "canary pw canary"
MAILBOOK = str(Path(sys.executable).parent / "mailbook")
LIVE = ("postfix virtual_mailbox_domains", "postfix virtual_mailbox_maps", "postfix virtual_alias_maps",
        "postfix transport_maps", "postfix relay_domains", "postfix smtpd_sender_login_maps",
        "postfix lookup virtual_mailbox_domains", "postfix lookup virtual_mailbox_maps", "LMTP", "policy service",
        "dovecot passdb", "dovecot userdb", "dovecot include order", "dovecot sieve", "dovecot tls", "auth cache",
        "canary auth", "canary user", "dkim signer")


class Stack:
    def __init__(self, dsn, pf, dovecot, root: Path):
        self.dsn, self.pf, self.dovecot, self.root = dsn, pf, dovecot, root
        self.follower: subprocess.Popen | None = None

    def doctor(self, *extra: str, password: str = CANARY_PW):
        write_private(self.root / "canary.pw", password + "\n")
        return cli(["doctor", "--dsn", self.dsn, "--live", "--config-dir", str(self.pf.config),
                    "--dovecot-config", str(self.dovecot.conf), "--canary", CANARY,
                    "--canary-password-file", str(self.root / "canary.pw"), *extra])

    def checks(self, *extra: str, password: str = CANARY_PW) -> tuple[int, dict[str, list[tuple[str, str]]], str]:
        """(exit code, check -> [(status, detail)], stderr) of `doctor --live --json`."""
        r = self.doctor("--json", *extra, password=password)
        found: dict[str, list[tuple[str, str]]] = {}
        for c in json.loads(r.stdout):
            found.setdefault(c["check"], []).append((c["status"], c["detail"]))
        return r.exit_code, found, r.stderr

    def start_follower(self) -> None:
        log = self.root / "follow.log"
        with open(log, "w") as out:
            self.follower = subprocess.Popen(
                [MAILBOOK, "dovecot", "follow", "--dsn", f"host=127.0.0.1 port={self.port} dbname={DB} user=mailauth",
                 "--password-file", str(self.root / "auth.pw"),
                 "--doveadm", f"{self.dovecot.doveadm_bin} -c {self.dovecot.conf}", "--poll", "1"],
                stdout=out, stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
        deadline = time.monotonic() + 30
        while "flushed every user" not in log.read_text():
            assert self.follower.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)

    def stop_follower(self) -> None:
        if self.follower is not None:
            self.follower.send_signal(signal.SIGTERM)
            self.follower.wait(timeout=20)
            self.follower = None


def submission_service(pf) -> str:
    return f"127.0.0.1:{pf.submission_port}/inet"


@pytest.fixture(scope="module")
def stack(cluster):
    require_root()
    with ExitStack() as stop:
        dsn = stop.enter_context(mail_database(cluster, DB, mailreader=READER_PW, mailauth=AUTH_PW,
                                               mailquota=QUOTA_PW))
        sql(dsn, "SELECT add_domain('example.com')")
        sql(dsn, "SELECT add_mailbox(%s, %s)", CANARY, CANARY_PW)
        root = stop.enter_context(daemon_root("mailbook-doctorlive-"))
        write_private(root / "auth.pw", AUTH_PW + "\n")
        write_private(root / "quota.pw", QUOTA_PW + "\n")
        tls = root / "tls"
        tls.mkdir()
        r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=mx.mailbook.test", "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")])
        assert r.returncode == 0, r.stderr
        pf = install_postfix(root, cluster, DB, READER_PW, submission=True, delivery="lmtp")
        pf.overrides.update({"smtpd_tls_cert_file": str(tls / "cert.pem"), "smtpd_tls_key_file": str(tls / "key.pem")})
        started(stop, pf)
        # the harness's submission service runs without TLS (its tests log in on loopback): as documented here
        postconf(pf, "-P", f"{submission_service(pf)}/smtpd_tls_security_level=encrypt")
        pf.reload()
        dovecot = install_dovecot(root, pf.mail, "--port", str(cluster.port), "--dbname", DB,
                                  "--password-file", str(root / "auth.pw"), "--quota-password-file",
                                  str(root / "quota.pw"), postfix=pf, shipped_cache=True)
        dovecot.postfix_auth_socket = pf.auth_socket
        dovecot.tls = True  # ssl = required, with the certificate the installer wrote
        started(stop, dovecot)
        s = Stack(dsn, pf, dovecot, root)
        s.port = cluster.port
        s.start_follower()
        stop.callback(s.stop_follower)
        yield s


def postconf(pf, *args: str) -> None:
    r = run(["postconf", "-c", str(pf.config), *args])
    assert r.returncode == 0, r.stderr


def failed(found, check: str) -> str:
    """The details of check's failing lines (asserting there is one)."""
    details = [d for status, d in found.get(check, []) if status == "fail"]
    assert details, (check, found.get(check))
    return " ".join(details)


def test_wired_stack_passes_every_check(stack):
    """As documented and running, every live check passes (one line each) and doctor exits 0."""
    code, found, err = stack.checks()
    assert code == 0, (err, found)
    for check in LIVE:
        assert found.get(check) and {s for s, _ in found[check]} == {"pass"}, (check, found.get(check))
    submission = [c for c in found if c.startswith("submission ")]
    assert submission and all(found[c] == [("pass", found[c][0][1])] for c in submission), found
    assert "1 `mailbook dovecot follow` connected" in found["auth cache"][0][1]
    assert "example.com/canary/" in found["postfix lookup virtual_mailbox_maps"][0][1]
    assert found["dkim signer"][0][1].startswith("no active DKIM key: DKIM is not in use here")  # no signer asked


def test_no_follower_means_changes_wait_for_ttl(stack):
    """The shipped cache without `dovecot follow`: the ttl is said, and how to start it."""
    stack.stop_follower()
    try:
        code, found, err = stack.checks()
        assert code == 1 and err.count("\n") == 1 and "auth cache" in err
        detail = failed(found, "auth cache")
        assert "waits up to" in detail and "systemctl enable --now mailbook-dovecot-follow" in detail, detail
    finally:
        stack.start_follower()


def test_wrong_canary_password_fails(stack):
    code, found, _ = stack.checks(password="not the canary's")
    assert code == 1
    assert "refused" in failed(found, "canary auth")
    assert found["canary user"][0][0] == "pass"


@contextmanager
def edited(path: Path, text: str):
    """path holding text until the block ends, then what it held before."""
    before = path.read_text()
    path.write_text(text)
    try:
        yield
    finally:
        path.write_text(before)


def test_conf_d_file_after_ours_resetting_sieve(stack):
    """Debian's 90-sieve.conf read after mailbook's include: the trap is named, with the file."""
    later = stack.dovecot.conf.parent / "zz-local.conf"
    later.write_text("sieve_script personal {\n  active_path = ~/.dovecot.sieve\n}\n"
                     if stack.dovecot.version == "2.4" else
                     "plugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n}\n")
    conf = stack.dovecot.conf
    with edited(conf, conf.read_text() + f"!include {later}\n"):
        code, found, _ = stack.checks()
    assert code == 1
    detail = failed(found, "dovecot sieve")
    assert "~/.dovecot.sieve" in detail and str(later) in detail and "99-mailbook.conf" in detail, detail
    assert found["dovecot include order"][0][0] == "warn" and str(later) in found["dovecot include order"][0][1]


def test_map_file_pointing_at_another_database(stack):
    """mailboxes.cf with another dbname: Postfix's own lookup of the canary fails, with the hint."""
    maps = stack.root / "maps" / "mailboxes.cf"
    text = maps.read_text()
    with edited(maps, text.replace(f"dbname = {DB}", "dbname = postgres")):
        stack.pf.reload()  # proxymap keeps its tables open until then
        code, found, _ = stack.checks()
    stack.pf.reload()
    assert f"dbname = {DB}" in text and code == 1
    detail = failed(found, "postfix lookup virtual_mailbox_maps")
    assert "-q canary@example.com proxy:pgsql:" in detail and "mailbook maps check" in detail, detail
    assert "function postfix_mailbox(unknown, unknown) does not exist" in detail, detail  # not mailbook's database
    assert found["postfix lookup virtual_mailbox_domains"][0][0] == "pass"


def test_missing_certificate_fails_submission(stack):
    cert = stack.root / "tls" / "cert.pem"
    cert.rename(cert.with_suffix(".away"))
    try:
        code, found, _ = stack.checks()
    finally:
        cert.with_suffix(".away").rename(cert)
    name = f"submission {submission_service(stack.pf).split('/')[0]}"
    assert code == 1 and f"{cert} is missing or unreadable" in failed(found, name)


def test_dovecot_tls_missing_key_or_off(stack):
    """Dovecot's key gone, a later conf file setting ssl = no, or one letting clients send
    passwords before STARTTLS: the TLS check fails naming the file or the setting (a missing
    key stops Dovecot's login processes at their next start)."""
    key = stack.pf.tls_key
    key.rename(key.with_suffix(".away"))
    try:
        code, found, _ = stack.checks()
    finally:
        key.with_suffix(".away").rename(key)
    assert code == 1 and f"{key} is missing or unreadable" in failed(found, "dovecot tls")
    later = stack.dovecot.conf.parent / "zz-ssl.conf"
    later.write_text("ssl = no\n")
    conf = stack.dovecot.conf
    with edited(conf, conf.read_text() + f"!include {later}\n"):
        code, found, _ = stack.checks()
    assert code == 1 and "ssl = no: passwords from other hosts cross in clear" in failed(found, "dovecot tls")
    setting = "auth_allow_cleartext" if stack.dovecot.version == "2.4" else "disable_plaintext_auth"
    later.write_text(f"ssl = yes\n{setting} = {'yes' if setting == 'auth_allow_cleartext' else 'no'}\n")
    with edited(conf, conf.read_text() + f"!include {later}\n"):
        code, found, _ = stack.checks()
    assert code == 1 and f"{setting} = " in failed(found, "dovecot tls") and "before STARTTLS" in failed(found, "dovecot tls")
    assert found["dovecot passdb"][0][0] == "pass"


def test_other_tools_text_is_printed_escaped(stack):
    """A main.cf value with a terminal escape reaches the table as "?", never as ESC."""
    main = stack.pf.config / "main.cf"
    with edited(main, main.read_text() + "virtual_alias_maps = hash:/etc/postfix/evil\x1b]0;owned\x07\n"):
        r = stack.doctor()
    assert r.exit_code == 1 and "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout
    assert "hash:/etc/postfix/evil?]0;owned?" in r.stdout


def test_dovecot_stopped_fails_lmtp_and_canary(stack):
    """Last: Dovecot stopped. LMTP, quota-status and the canary fail, each saying to start it."""
    stack.stop_follower()
    stack.dovecot.stop()
    try:
        deadline = time.monotonic() + 20
        while (stack.pf.queue / "private" / "dovecot-lmtp").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        code, found, err = stack.checks()
    finally:
        stack.dovecot.start()
        stack.start_follower()
    assert code == 1 and "Traceback" not in err
    assert "is Dovecot running" in failed(found, "LMTP")
    assert "is Dovecot running" in failed(found, "policy service")
    assert "is Dovecot running" in failed(found, "canary auth")
    assert "is Dovecot running" in failed(found, "canary user")


def test_live_options_without_live_are_refused(stack):
    """--canary without --live (or a password file without --canary): one line, exit 1."""
    for args in (["--canary", CANARY], ["--live", "--canary-password-file", str(stack.root / "canary.pw")]):
        r = cli(["doctor", "--dsn", stack.dsn, *args])
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "--canary" in r.stderr, r.stderr

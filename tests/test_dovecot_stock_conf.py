"""`mailbook dovecot install` on top of the distribution's own /etc/dovecot (Debian 12's
Dovecot 2.3 or Debian 13's 2.4, as installed), read back with `doveconf`: its
conf.d/99-mailbook.conf comes last, so none of Debian's conf.d files overrides what mailbook
needs (the mail location, the whole address for LMTP, the Sieve script path, the quota).
The copy of /etc/dovecot is private; the system's is never touched."""

from __future__ import annotations

import pwd
import re
import shutil

import pytest

from mailbook.dovecot import installed_version
from mailbook.files import write_private
from tests.harness.process import cli, private_dir, remove, require_program, require_root, run
from tests.harness.tls import certificate


@pytest.fixture(scope="module")
def stock():
    """A copy of /etc/dovecot with mailbook installed into it, as the admin guide says:
    `dovecot install` (with a test certificate), then auth-system.conf.ext commented out
    in 10-auth.conf."""
    require_root()
    root = private_dir("mailbook-stock-dovecot-")
    try:
        etc = root / "dovecot"
        shutil.copytree("/etc/dovecot", etc, symlinks=True)
        auth = etc / "conf.d" / "10-auth.conf"
        auth.write_text(re.sub(r"^!include auth-system\.conf\.ext", "#!include auth-system.conf.ext",
                               auth.read_text(), flags=re.M))
        write_private(root / "auth.pw", "auth-pw\n")
        write_private(root / "quota.pw", "quota-pw\n")
        cert, key = certificate(root)
        cli(["dovecot", "install", "--dest", str(etc / "dovecot-sql.conf.ext"), "--conf-d", str(etc / "conf.d"),
             "--password-file", str(root / "auth.pw"), "--quota-password-file", str(root / "quota.pw"),
             "--vmail-user", "nobody", "--vmail-group", "nogroup", "--tls-cert", str(cert), "--tls-key", str(key)],
            check=True)
        yield etc
    finally:
        remove(root)


def doveconf(etc, *args: str) -> str:
    r = run([require_program("/usr/bin/doveconf"), "-c", str(etc / "dovecot.conf"), *args])
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_doveconf_reads_it(stock):
    """Dovecot takes the whole configuration: no error, and the SQL passdb is the only one."""
    out = doveconf(stock, "-n")
    assert "passdb" in out and "pam" not in out, out


def test_mailbook_wins_over_debian(stock):
    """What Debian's conf.d sets otherwise (mbox or ~/Maildir, ~/.dovecot.sieve, the local
    part for LMTP) is mailbook's value in the effective configuration."""
    if installed_version() == "2.3":
        assert doveconf(stock, "-h", "mail_location").strip() == "maildir:~"
        assert doveconf(stock, "-h", "auth_username_format").strip() == "%Lu"
        assert doveconf(stock, "-f", "protocol=lmtp", "-h", "plugin/sieve").strip() == "file:~/sieve;active=~/dovecot.sieve"
        assert doveconf(stock, "-h", "plugin/quota").strip() == "count:User quota"
        return
    for name, value in (("mail_driver", "maildir"), ("mail_path", "~"), ("mail_inbox_path", "."), ("mail_uid", "nobody")):
        assert doveconf(stock, "-h", name).strip() == value, name
    # Debian 13's 20-lmtp.conf: %{user | username | lower}, the local part only
    assert doveconf(stock, "-f", "protocol=lmtp", "-h", "auth_username_format").strip() == "%{user | lower}"
    lmtp = doveconf(stock, "-f", "protocol=lmtp", "-n")
    assert re.search(r"sieve_script personal \{\n(?:  .*\n)*?  active_path = ~/dovecot\.sieve\n", lmtp), lmtp
    assert re.search(r'quota "User quota" \{\n  driver = count\n  storage_grace = 0\n\}', lmtp), lmtp
    for name in ("quota_status_overquota", "quota_status_toolarge"):  # else 2.4 answers nothing
        assert doveconf(stock, "-h", name).strip() == "552 5.2.2 Mailbox is full", name


def test_submission_auth_and_cert(stock):
    """Postfix's submission services log in through Dovecot's listener in Postfix's queue
    (private/auth, only Postfix may connect), and Dovecot presents the certificate given
    (the one `maps postconf --tls-cert` gives Postfix), not Debian's 10-ssl.conf one."""
    auth = doveconf(stock, "-n", "service/auth")
    assert re.search(r"unix_listener /var/spool/postfix/private/auth \{\n    group = postfix\n    mode = 0660\n"
                     r"    user = postfix\n  \}", auth), auth
    root = stock.parent
    if installed_version() == "2.3":
        assert doveconf(stock, "-h", "ssl_cert", "ssl_key").split() == [f"<{root}/tls-cert.pem", f"<{root}/tls-key.pem"]
    else:
        # 2.4 shows ssl_server_cert_file and ssl_server_key_file as a block (doveconf -h finds neither)
        ssl = doveconf(stock, "-n", "ssl_server")
        assert f"  cert_file = {root}/tls-cert.pem\n  key_file = {root}/tls-key.pem\n" in ssl, ssl


def test_system_vmail_uid_admitted(tmp_path):
    """A vmail user made with `adduser --system` has a uid below Dovecot's first_valid_uid
    (500), which Dovecot refuses for mail access (every userdb lookup failed, quota-status
    answered 450): `dovecot install` lowers first_valid_uid to that uid, and only then."""
    require_root()
    etc = tmp_path / "dovecot"
    shutil.copytree("/etc/dovecot", etc, symlinks=True)
    write_private(tmp_path / "auth.pw", "auth-pw\n")
    write_private(tmp_path / "quota.pw", "quota-pw\n")
    install = ["dovecot", "install", "--dest", str(etc / "dovecot-sql.conf.ext"), "--conf-d", str(etc / "conf.d"),
               "--password-file", str(tmp_path / "auth.pw"), "--quota-password-file", str(tmp_path / "quota.pw")]
    cli([*install, "--vmail-user", "mail", "--vmail-group", "mail"], check=True)  # Debian's mail: uid 8
    assert doveconf(etc, "-h", "first_valid_uid").strip() == str(pwd.getpwnam("mail").pw_uid)
    cli([*install, "--vmail-user", "nobody", "--vmail-group", "nogroup"], check=True)  # 65534: admitted already
    assert doveconf(etc, "-h", "first_valid_uid").strip() == "500"
    r = cli([*install, "--vmail-user", "no-such-vmail", "--vmail-group", "nogroup"], check=True)
    assert "there is no user no-such-vmail yet" in r.stdout, r.stdout

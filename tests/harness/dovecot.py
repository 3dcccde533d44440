"""A private Dovecot, configured by `mailbook dovecot install`, for the tests and the
benchmarks. It runs as root with its own base_dir under the caller's directory; mail is
owned by nobody:nogroup. Debian's dovecot-core, dovecot-imapd, dovecot-lmtpd and
dovecot-pgsql, nothing stood in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mailbook.demo.cluster import free_port

from .postfix import VMAIL_GID, VMAIL_UID, Postfix
from .process import cli, require_program, run


class Dovecot:
    """Dovecot 2.3 (Debian 12's) with its own base_dir, reading the files `mailbook dovecot
    install` wrote. IMAP on a loopback port of its own; with the LMTP include, LMTP and
    quota-status on sockets in a Postfix's queue. config() is the whole dovecot.conf: a
    Dovecot of another version is a subclass that writes its own."""

    def __init__(self, root: Path, sql_conf: Path, auth_include: Path, mail: Path,
                 lmtp_include: Path | None = None):
        self.root, self.sql_conf, self.auth_include, self.mail = root, sql_conf, auth_include, mail
        self.lmtp_include = lmtp_include  # lmtp-mailbook.conf.ext as installed, or None
        self.postfix_auth_socket: Path | None = None  # set to Postfix.auth_socket for SASL
        self.submission_host: str | None = None  # where Sieve sends replies: the Postfix's smtpd
        self.protocols = "imap"  # "" for LMTP alone (the benchmarks)
        self.conf = root / "dovecot.conf"
        self.log = root / "dovecot.log"
        self.port = free_port()
        self.dovecot = require_program("/usr/sbin/dovecot")
        self.doveadm_bin = require_program("/usr/bin/doveadm")

    def config(self) -> str:
        return (f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
protocols = {self.protocols}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
# a failed login is answered at once: tests try wrong passwords on purpose, and the default
# 2 s delay (which also held up the next login here, 4 s) is a brute-force brake, not behaviour under test
auth_failure_delay = 0
mail_location = maildir:~
""" + ("" if self.lmtp_include else """\
# the userdb's quota_rule (user_query) takes effect through the quota plugin
mail_plugins = quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
}
""") + f"""\
mail_uid = {VMAIL_UID}
mail_gid = {VMAIL_GID}
first_valid_uid = 100
first_valid_gid = 100
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
!include {self.auth_include}
""" + (f"""!include {self.lmtp_include}
submission_host = {self.submission_host}
""" if self.lmtp_include else "") + (f"""service auth {{
  unix_listener {self.postfix_auth_socket} {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
""" if self.postfix_auth_socket else ""))

    def start(self) -> None:
        self.conf.write_text(self.config())
        (self.root / "state").mkdir(exist_ok=True)
        # dovecot daemonizes and its children keep stdout/stderr: never wait on pipes
        errors = self.root / "start.err"
        with open(errors, "w") as err:
            r = subprocess.run([self.dovecot, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, timeout=30)
        assert r.returncode == 0, errors.read_text() + self.log_text()

    def stop(self) -> None:
        run([self.doveadm_bin, "-c", str(self.conf), "stop"])

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def log_errors(self) -> list[str]:
        """The last five errors in its log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "Error:" in line or "Fatal:" in line][-5:]

    def auth_test(self, user: str, password: str, service: str | None = None) -> subprocess.CompletedProcess:
        """doveadm auth test (exit 0 logged in, 77 refused), as service if given (else
        doveadm's own, service doveadm)."""
        # no-penalty: Dovecot's auth penalty (2 s doubling per failure from one client,
        # which all of doveadm is) held each login after a failed one for 4 s; like
        # auth_failure_delay above, a brute-force brake, not behaviour under test
        extra = [] if service is None else ["-x", f"service={service}"]
        return run([self.doveadm_bin, "-c", str(self.conf), "auth", "test", "-x", "no-penalty", *extra, user, password])

    def doveadm(self, *args: str) -> subprocess.CompletedProcess:
        return run([self.doveadm_bin, "-c", str(self.conf), *args])


def install_dovecot(root: Path, mail: Path, *install_args: str, postfix: Postfix | None = None,
                    shipped_cache: bool = False) -> Dovecot:
    """`mailbook dovecot install` into root/dovecot-conf (mailbox base: mail, plus the
    given connection options), and a Dovecot in root/dovecot using it; not started.
    With a Postfix that delivers through LMTP, the LMTP include too (its sockets in that
    Postfix's queue, the vmail user nobody:nogroup; install_args must then carry
    --quota-password-file), Sieve replies sent to that Postfix. Without an
    --auth-cache-ttl and unless shipped_cache, Dovecot caches nothing."""
    conf = root / "dovecot-conf"
    lmtp = postfix is not None and postfix.delivery == "lmtp"
    delivery = ["--postfix-queue", str(postfix.queue), "--vmail-user", "nobody", "--vmail-group", "nogroup"] \
        if lmtp else ["--delivery", "virtual"]
    if "--auth-cache-ttl" not in install_args and not shipped_cache:
        # tests of what the SQL answers see each change at once: no cache unless asked for
        # (the shipped cache is tested in test_dovecot_auth_cache.py and test_outage.py)
        install_args = (*install_args, "--auth-cache-ttl", "0")
    cli(["dovecot", "install", "--dest", str(conf / "dovecot-sql.conf.ext"), "--conf-d", str(conf),
         "--mailbox-base", str(mail), *delivery, *install_args], check=True)
    dovecot = Dovecot(root / "dovecot", conf / "dovecot-sql.conf.ext", conf / "auth-mailbook.conf.ext", mail,
                      conf / "lmtp-mailbook.conf.ext" if lmtp else None)
    if lmtp:
        dovecot.submission_host = f"127.0.0.1:{postfix.port}"
    dovecot.root.mkdir(exist_ok=True)
    return dovecot

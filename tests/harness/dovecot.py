"""A private Dovecot, configured by `mailbook dovecot install`, for the tests and the
benchmarks. It runs as root with its own base_dir under the caller's directory; mail is
owned by nobody:nogroup. Debian's dovecot-core, dovecot-imapd, dovecot-lmtpd and
dovecot-pgsql, nothing stood in."""

from __future__ import annotations

import imaplib
import os
import re
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from mailbook.demo.cluster import free_port
from mailbook.dovecot import installed_version
from mailbook.files import write_private

from .database import mail_database
from .postfix import VMAIL_GID, VMAIL_UID, Postfix
from .process import cli, private_dir, remove, require_program, require_root, run
from .tls import certificate


class Dovecot:
    """Dovecot 2.3 (Debian 12's) with its own base_dir, reading the files `mailbook dovecot
    install` wrote (through their conf.d/99-mailbook.conf). IMAP on a loopback port of its
    own; with the LMTP include, LMTP and quota-status on sockets in a Postfix's queue.
    config() is the whole dovecot.conf: Dovecot24 writes 2.4's."""

    version = "2.3"
    idle_kill_setting = "default_idle_kill"

    def __init__(self, root: Path, sql_conf: Path, auth_include: Path, mail: Path,
                 lmtp_include: Path | None = None):
        self.root, self.sql_conf, self.auth_include, self.mail = root, sql_conf, auth_include, mail
        self.main_include = auth_include.parent / "99-mailbook.conf"  # includes the other two
        self.lmtp_include = lmtp_include  # lmtp-mailbook.conf.ext as installed, or None
        self.submission_host: str | None = None  # where Sieve sends replies: the Postfix's smtpd
        self.tls = False  # ssl = required (the installed certificate) instead of no
        self.idle_kill: int | None = None  # seconds before Dovecot ends a process without clients (default 60)
        self.protocols = "imap"  # "" for LMTP alone (the benchmarks)
        self.conf = root / "dovecot.conf"
        self.log = root / "dovecot.log"
        self.port = free_port()
        self.dovecot = require_program("/usr/sbin/dovecot")
        self.doveadm_bin = require_program("/usr/bin/doveadm")

    def quota_fields(self, bytes_: int | None = None, messages: int | None = None) -> list[str]:
        """The lines `doveadm user` prints for a mailbox with these limits."""
        rule = "*" + (f":bytes={bytes_}" if bytes_ is not None else "") + (f":messages={messages}" if messages is not None else "")
        return [f"quota_rule\t{rule}"]

    def connect(self) -> str:
        """The libpq connection string of the installed passdb/userdb."""
        return re.search(r"^connect = (.*)$", self.sql_conf.read_text(), re.M).group(1)

    def _common(self) -> str:
        """What both versions write alike: paths, the IMAP listener, the vmail owner."""
        return f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
listen = 127.0.0.1
ssl = {'required' if self.tls else 'no'}
auth_mechanisms = plain login
# a failed login is answered at once: tests try wrong passwords on purpose, and the default
# 2 s delay (which also held up the next login here, 4 s) is a brute-force brake, not behaviour under test
auth_failure_delay = 0
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
""" + (f"submission_host = {self.submission_host}\n" if self.submission_host else "") \
          + (f"{self.idle_kill_setting} = {self.idle_kill} s\n" if self.idle_kill else "")

    def config(self) -> str:
        return (f"protocols = {self.protocols}\n" + ("" if self.tls else "disable_plaintext_auth = no\n") + self._common()
                + ("" if self.lmtp_include else """\
# the userdb's quota_rule (user_query) takes effect through the quota plugin
mail_plugins = quota
plugin {
  quota = count:User quota
  quota_vsizes = yes
}
""") + f"!include {self.main_include}\n")

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

    def auth_test(self, user: str, password: str, service: str | None = None,
                  rip: str | None = None) -> subprocess.CompletedProcess:
        """doveadm auth test (exit 0 logged in, 77 refused), as service if given (else
        doveadm's own, service doveadm), from client address rip if given (else none
        known: allow_nets then refuses)."""
        # no-penalty: Dovecot's auth penalty (2 s doubling per failure from one client,
        # which all of doveadm is) held each login after a failed one for 4 s; like
        # auth_failure_delay above, a brute-force brake, not behaviour under test
        extra = ([] if service is None else ["-x", f"service={service}"]) + ([] if rip is None else ["-x", f"rip={rip}"])
        return run([self.doveadm_bin, "-c", str(self.conf), "auth", "test", "-x", "no-penalty", *extra, user, password])

    def doveadm(self, *args: str) -> subprocess.CompletedProcess:
        return run([self.doveadm_bin, "-c", str(self.conf), *args])


def install_dovecot(root: Path, mail: Path, *install_args: str, postfix: Postfix | None = None,
                    shipped_cache: bool = False) -> Dovecot:
    """`mailbook dovecot install` into root/dovecot-conf (mailbox base: mail, plus the
    given connection options), and a Dovecot in root/dovecot using it; not started.
    With a Postfix that delivers through LMTP, the LMTP include too (its sockets in that
    Postfix's queue, the vmail user nobody:nogroup; install_args must then carry
    --quota-password-file), Sieve replies sent to that Postfix. With a Postfix that has
    the submission services, the auth listener they log in through (in its queue) and its
    certificate; else no listener (--no-submission) and a test certificate of its own.
    Without an --auth-cache-ttl and unless shipped_cache, Dovecot caches nothing."""
    conf = root / "dovecot-conf"
    lmtp = postfix is not None and postfix.delivery == "lmtp"
    delivery = ["--postfix-queue", str(postfix.queue), "--vmail-user", "nobody", "--vmail-group", "nogroup"] \
        if lmtp else ["--delivery", "virtual"]
    if postfix is not None and postfix.submission_port:
        delivery += ["--postfix-queue", str(postfix.queue), "--tls-cert", str(postfix.tls_cert),
                     "--tls-key", str(postfix.tls_key)]
    else:
        root.mkdir(parents=True, exist_ok=True)
        cert, key = certificate(root)
        delivery += ["--no-submission", "--tls-cert", str(cert), "--tls-key", str(key)]
    if "--auth-cache-ttl" not in install_args and not shipped_cache:
        # tests of what the SQL answers see each change at once: no cache unless asked for
        # (the shipped cache is tested in test_dovecot_auth_cache.py and test_outage.py)
        install_args = (*install_args, "--auth-cache-ttl", "0")
    cli(["dovecot", "install", "--dest", str(conf / "dovecot-sql.conf.ext"), "--conf-d", str(conf),
         "--mailbox-base", str(mail), *delivery, *install_args], check=True)
    dovecot = dovecot_class()(root / "dovecot", conf / "dovecot-sql.conf.ext", conf / "auth-mailbook.conf.ext", mail,
                      conf / "lmtp-mailbook.conf.ext" if lmtp else None)
    if lmtp:
        dovecot.submission_host = f"127.0.0.1:{postfix.port}"
    dovecot.root.mkdir(exist_ok=True)
    return dovecot


class Dovecot24(Dovecot):
    """Dovecot 2.4 (Debian 13's): the same daemon set, in 2.4's configuration language."""

    version = "2.4"
    idle_kill_setting = "default_idle_kill_interval"

    def connect(self) -> str:
        """The first pgsql block's parameters (2.4 writes one per line, quoted) as libpq's string."""
        block = re.search(r"^\s*parameters \{\n(.*?)\n\s*\}", self.sql_conf.read_text(), re.M | re.S).group(1)
        params = {m.group(1): m.group(2).replace('\\"', '"').replace("\\\\", "\\")
                  for m in re.finditer(r'^\s*(\w+) = "((?:[^"\\]|\\.)*)"$', block, re.M)}
        return make_conninfo(**params)

    def quota_fields(self, bytes_: int | None = None, messages: int | None = None) -> list[str]:
        return ([f"quota_storage_size\t{bytes_}"] if bytes_ is not None else []) + \
               ([f"quota_message_count\t{messages}"] if messages is not None else [])

    def config(self) -> str:
        protocols = "".join(f"  {p} = yes\n" for p in self.protocols.split())
        return ("dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
                + (f"protocols {{\n{protocols}}}\n" if protocols else "")
                # 2.4's listeners have no address of their own: listen (above) says where
                # with ssl = required 2.4 refuses to start when this is set (it could not apply)
                + ("" if self.tls else "auth_allow_cleartext = yes\n") + self._common().replace("    address = 127.0.0.1\n", "")
                + ("" if self.lmtp_include else """\
# the userdb's quota_storage_size (user_query) takes effect through the quota plugin
mail_plugins {
  quota = yes
}
quota "User quota" {
  driver = count
}
""") + f"!include {self.main_include}\n")


class _IMAP4From(imaplib.IMAP4):
    """imaplib's client from a given local address (another loopback one, 127.0.0.2: the
    whole of 127/8 is this host's), so the server sees that client address."""

    def __init__(self, host: str, port: int, source: str, timeout: float):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))


def imap_login(dovecot: Dovecot, user: str, password: str, timeout: float = 30, source: str | None = None) -> bool:
    """An IMAP login to dovecot that selects INBOX: True if both work, False if refused.
    From the local address source if given (Dovecot's rip, what allow_nets checks)."""
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=timeout) if source is None \
        else _IMAP4From("127.0.0.1", dovecot.port, source, timeout)
    try:
        imap.login(user, password)
        return imap.select("INBOX")[0] == "OK"
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def imap_login_answer(dovecot: Dovecot, user: str, password: str, source: str, timeout: float = 30) -> str:
    """An IMAP LOGIN from the local address source: 'OK', or the server's NO response
    text (its response code and reason, e.g. "[AUTHENTICATIONFAILED] Authentication
    failed.")."""
    imap = _IMAP4From("127.0.0.1", dovecot.port, source, timeout)
    try:
        return imap.login(user, password)[0]
    except imaplib.IMAP4.error as exc:
        return str(exc)
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def tool_config(mail: Path) -> str:
    """A dovecot.conf for Dovecot's command-line tools (sieve-test) with maildirs under mail,
    in the installed version's language."""
    common = "mail_uid = nobody\nmail_gid = nogroup\nfirst_valid_uid = 1\nlog_path = /dev/stderr\n"
    if installed_version() == "2.4":
        return ("dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n"
                f"mail_driver = maildir\nmail_path = {mail}\n" + common)
    return f"mail_location = maildir:{mail}\n" + common


def dovecot_class() -> type[Dovecot]:
    """The harness class for the installed Dovecot."""
    return Dovecot24 if installed_version() == "2.4" else Dovecot


@contextmanager
def dovecot_with_mailboxes(cluster, dbname: str, auth_pw: str, mailboxes: dict[str, str],
                           what: str) -> Iterator[tuple[Dovecot, str]]:
    """require_root(what); a mail database dbname with example.com and these mailboxes
    (address: password), and a started Dovecot that `mailbook dovecot install` wired to it
    (as mailauth, password auth_pw); yields (the Dovecot, the database's DSN). Both are
    stopped and removed afterwards, whatever happened."""
    require_root(what)
    root = private_dir(f"mailbook-{dbname.replace('_', '-')}-")
    dc = None
    try:
        with mail_database(cluster, dbname, mailauth=auth_pw) as dsn:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("SET ROLE mailadmin")
                conn.execute("SELECT add_domain('example.com')")
                for address, password in mailboxes.items():
                    conn.execute("SELECT add_mailbox(%s, %s)", (address, password))
            write_private(root / "auth.pw", auth_pw + "\n")
            mail = root / "mail"
            mail.mkdir()
            os.chown(mail, VMAIL_UID, VMAIL_GID)
            dc = install_dovecot(root, mail, "--port", str(cluster.port), "--dbname", dbname,
                                 "--password-file", str(root / "auth.pw"))
            dc.start()
            yield dc, dsn
    finally:
        if dc:
            dc.stop()
        remove(root)

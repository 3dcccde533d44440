"""Private Postfix and Dovecot instances for the tests, configured from mailbook's files.

Both run as root (Postfix must); their files live in a directory under /var/tmp (Postfix
only logs to files below /var). Mail is owned by nobody:nogroup, so no OS account is
created. Nothing here is a stand-in: these are Debian's postfix, postfix-pgsql,
dovecot-core, dovecot-imapd and dovecot-pgsql.
"""

from __future__ import annotations

import os
import pwd
import grp
import shutil
import smtplib
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from conftest import cli, require_program, run
from mailbook import data_dir
from mailbook.postfix.postconf import snippet_services, snippet_settings, with_services
from mailbook.demo.cluster import free_port
from mailbook.files import write_private
from mailbook.passwords import set_role_password

VMAIL_UID = pwd.getpwnam("nobody").pw_uid
VMAIL_GID = grp.getgrnam("nogroup").gr_gid

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def submission_options() -> list[tuple[str, str]]:
    """The "-o name=value" lines of the submission service that main.cf.snippet shows,
    as shipped (so the documented setup is the tested one)."""
    text = (data_dir("postfix-maps") / "main.cf.snippet").read_text()
    options = [line.split("-o", 1)[1].strip() for line in text.splitlines() if line.startswith("#     -o ")]
    assert options, "main.cf.snippet shows no submission service"
    return [tuple(o.split("=", 1)) for o in options]


def private_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    os.chmod(path, 0o755)
    return path


class Postfix:
    def __init__(self, root: Path, maps: Path, submission: bool = False, delivery: str = "virtual"):
        self.root, self.maps = root, maps
        # "virtual": Postfix's virtual(8) writes the maildirs; "lmtp": main.cf.snippet as
        # shipped, Dovecot's LMTP (a Dovecot with lmtp=True must run: Dovecot.start)
        self.delivery = delivery
        self.queue = root / "queue"
        self.config = root / "etc"
        self.mail = root / "mail"
        self.log = root / "maillog"
        self.port = free_port()
        # a second smtpd as main.cf.snippet's submission service, if asked for; SASL goes
        # to Dovecot's socket at auth_socket (Dovecot must listen there: Dovecot.start)
        self.submission_port = free_port() if submission else None
        self.auth_socket = root / "queue" / "private" / "auth"
        self.postfix = require_program("/usr/sbin/postfix")
        self.overrides: dict[str, str] = {}  # main.cf settings in place of the snippet's

    def configure(self) -> None:
        for d in (self.config, self.root / "queue", self.root / "data"):
            d.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")  # master.lock and friends
        self.mail.mkdir(exist_ok=True)
        os.chown(self.mail, VMAIL_UID, VMAIL_GID)
        os.chmod(self.mail, 0o770)
        settings = dict(snippet_settings(self.maps, self.delivery))  # mailbook's main.cf lines, as shipped
        settings.update({
            # this instance's own places and identity
            "compatibility_level": "3.6",
            "queue_directory": str(self.root / "queue"),
            "data_directory": str(self.root / "data"),
            "meta_directory": "/etc/postfix",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx.mailbook.test",
            "mydomain": "mailbook.test",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "192.0.2.1/32",  # loopback is NOT trusted: relaying must be refused
            "maillog_file": str(self.log),
            "alias_maps": "",
            "alias_database": "",
            "smtputf8_enable": "no",
            # deployment-specific values that the snippet leaves to the admin
            "virtual_mailbox_base": str(self.mail),
            "virtual_uid_maps": f"static:{VMAIL_UID}",
            "virtual_gid_maps": f"static:{VMAIL_GID}",
        })
        settings.update(self.overrides)
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        master = with_services(MASTER_CF.format(port=self.port).replace("1000?", "1000"),
                               snippet_services(self.maps))
        if self.submission_port:
            options = dict(submission_options())
            options["smtpd_tls_security_level"] = "none"  # loopback, no certificate here
            master += f"127.0.0.1:{self.submission_port} inet n - n - - smtpd\n"
            master += "".join(f"  -o {k}={v}\n" for k, v in options.items())
        (self.config / "master.cf").write_text(master)

    def start(self) -> None:
        self.configure()
        r = run([self.postfix, "-c", str(self.config), "start"])
        assert r.returncode == 0, r.stdout + r.stderr
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as s:
                    s.noop()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"Postfix did not listen on {self.port}: {self.log_text()}")

    def stop(self) -> None:
        run([self.postfix, "-c", str(self.config), "stop"])

    def reload(self) -> None:
        r = run([self.postfix, "-c", str(self.config), "reload"])
        assert r.returncode == 0, r.stdout + r.stderr

    def postqueue_flush(self) -> None:
        run(["/usr/sbin/postqueue", "-c", str(self.config), "-f"])

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def smtp(self) -> smtplib.SMTP:
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        s.ehlo("client.mailbook.test")
        return s

    def submit(self, login: str | None, password: str, sender: str, recipient: str,
               subject: str | None = None) -> tuple[int, str]:
        """On the submission port: log in (unless login is None), MAIL FROM sender, RCPT
        TO recipient; then, if a subject is given and all was accepted, send a message.
        The first reply that is not 2xx, else the last one."""
        with smtplib.SMTP("127.0.0.1", self.submission_port, timeout=30) as s:
            s.ehlo("client.mailbook.test")
            if login is not None:
                try:
                    s.login(login, password)
                except smtplib.SMTPAuthenticationError as exc:
                    return exc.smtp_code, exc.smtp_error.decode()
            for code, msg in (s.mail(sender), s.rcpt(recipient)):
                if code >= 300:
                    return code, msg.decode()
            if subject is None:
                return code, msg.decode()
            code, msg = s.data(f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n\r\nsent by {login}\r\n")
            return code, msg.decode()

    def rcpt(self, recipient: str, sender: str = "sender@elsewhere.example") -> tuple[int, str]:
        """The server's reply to RCPT TO (the message is not sent)."""
        with self.smtp() as s:
            s.mail(sender)
            code, msg = s.rcpt(recipient)
            return code, msg.decode()

    def send(self, recipient: str, subject: str, sender: str = "sender@elsewhere.example",
             headers: str = "", body: str = "hello from the mailbook tests") -> None:
        message = (f"From: {sender or 'MAILER-DAEMON@elsewhere.example'}\r\nTo: {recipient}\r\n"
                   f"Subject: {subject}\r\n{headers}\r\n{body}\r\n")
        with self.smtp() as s:
            s.sendmail(sender, [recipient], message)

    def delivered(self, maildir: str, subject: str, timeout: float = 20) -> Path:
        """The file in virtual_mailbox_base/maildir/new/ holding `subject`."""
        new = self.mail / maildir / "new"
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.messages(maildir, subject)
            if found:
                return found[0]
            time.sleep(0.2)
        raise AssertionError(f"no message {subject!r} in {new}; log:\n{self.log_text()[-3000:]}")

    def messages(self, maildir: str, subject: str) -> list[Path]:
        """The files in virtual_mailbox_base/maildir/new/ whose Subject contains `subject`."""
        new = self.mail / maildir / "new"
        if not new.is_dir():
            return []
        return [f for f in new.iterdir()
                if any(line.startswith("Subject:") and subject in line
                       for line in f.read_text(errors="replace").splitlines())]


class Dovecot:
    def __init__(self, root: Path, sql_conf: Path, auth_include: Path, mail: Path,
                 lmtp_include: Path | None = None):
        self.root, self.sql_conf, self.auth_include, self.mail = root, sql_conf, auth_include, mail
        self.lmtp_include = lmtp_include  # lmtp-mailbook.conf.ext as installed, or None
        self.postfix_auth_socket: Path | None = None  # set to Postfix.auth_socket for SASL
        self.submission_host: str | None = None  # where Sieve sends replies: the Postfix's smtpd
        self.conf = root / "dovecot.conf"
        self.log = root / "dovecot.log"
        self.port = free_port()
        self.dovecot = require_program("/usr/sbin/dovecot")
        self.doveadm_bin = require_program("/usr/bin/doveadm")

    def start(self) -> None:
        self.conf.write_text(f"""\
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.log}
protocols = imap
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

    def auth_test(self, user: str, password: str) -> subprocess.CompletedProcess:
        # no-penalty: Dovecot's auth penalty (2 s doubling per failure from one client,
        # which all of doveadm is) held each login after a failed one for 4 s; like
        # auth_failure_delay above, a brute-force brake, not behaviour under test
        return run([self.doveadm_bin, "-c", str(self.conf), "auth", "test", "-x", "no-penalty", user, password])

    def doveadm(self, *args: str) -> subprocess.CompletedProcess:
        return run([self.doveadm_bin, "-c", str(self.conf), *args])


def install_dovecot(root: Path, mail: Path, *install_args: str, postfix: "Postfix | None" = None) -> Dovecot:
    """`mailbook dovecot install` into root/dovecot-conf (mailbox base: mail, plus the
    given connection options), and a Dovecot in root/dovecot using it; not started.
    With a Postfix that delivers through LMTP, the LMTP include too (its sockets in that
    Postfix's queue, the vmail user nobody:nogroup; install_args must then carry
    --quota-password-file), Sieve replies sent to that Postfix."""
    conf = root / "dovecot-conf"
    lmtp = postfix is not None and postfix.delivery == "lmtp"
    delivery = ["--postfix-queue", str(postfix.queue), "--vmail-user", "nobody", "--vmail-group", "nogroup"] \
        if lmtp else ["--delivery", "virtual"]
    if "--auth-cache-ttl" not in install_args:
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


def require_root(what: str = "the Postfix and Dovecot tests") -> None:
    if os.geteuid() != 0:
        pytest.fail(f"{what} must run as root (scripts/test.sh under CI does)")


@contextmanager
def mail_database(cluster, name: str, **role_passwords: str) -> Iterator[str]:
    """A migrated mail database `name` on the session's cluster, the given service roles
    (mailreader=..., mailauth=..., mailquota=...) with those passwords; yields its superuser DSN. Drops
    it afterwards and takes the passwords back: roles are the whole cluster's."""
    cli(["init", "--dsn", cluster.dsn(), "--database", name], check=True)
    dsn = cluster.dsn(name)
    cli(["migrate", "apply", "--dsn", dsn], check=True)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for role, password in role_passwords.items():
            set_role_password(conn, role, password)
    try:
        yield dsn
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in role_passwords:
                conn.execute(f"ALTER ROLE {role} PASSWORD NULL")


def install_postfix(root: Path, cluster, dbname: str, reader_password: str, submission: bool = False,
                    delivery: str = "virtual") -> Postfix:
    """`mailbook maps install` into root/maps (mailreader's password from a 0600 file),
    and a Postfix in root/postfix using them; not started."""
    pw = root / "reader.pw"
    write_private(pw, reader_password + "\n")
    cli(["maps", "install", "--dest", str(root / "maps"), "--port", str(cluster.port), "--dbname", dbname,
         "--password-file", str(pw)], check=True)
    return Postfix(root / "postfix", root / "maps", submission=submission, delivery=delivery)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

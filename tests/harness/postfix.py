"""A private Postfix, configured from mailbook's files, for the tests and the benchmarks.

It runs as root (Postfix must); its files live in a directory under /var/tmp (Postfix
only logs to files below /var). Mail is owned by nobody:nogroup, so no OS account is
created. Nothing here is a stand-in: these are Debian's postfix and postfix-pgsql.
The benchmarks start the same instance (benchmarks/e2e.py), with their own main.cf
lines for the maps, a load test's limits, and discard(8) where nothing is to be delivered.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import smtplib
import time
from pathlib import Path

from mailbook.demo.cluster import free_port
from mailbook.files import write_private
from mailbook.postfix.postconf import Service, snippet_services, snippet_settings, submission_services, with_services

from .process import cli, require_program, run
from .tls import certificate, client_context

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
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
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


def submission_master_cf(services: list[Service], ports: dict[str, int]) -> str:
    """master.cf.snippet's submission services as master.cf lines, each on the loopback
    port given for its name ("submission": 587's stand-in), options as shipped."""
    out = []
    for service in services:
        name, *fields = service.entry.split()
        out.append(" ".join([f"127.0.0.1:{ports[name]}", *fields]) + "\n")
        out += [f"  -o {option}={value}\n" for option, value in service.options]
    return "".join(out)


def master_cf(port: int, discard: tuple[str, ...] = ()) -> str:
    """MASTER_CF for an smtpd on port; the services named in discard hand every message
    to discard(8) (a benchmark measuring Postfix's own work and its lookups)."""
    lines = []
    for line in MASTER_CF.format(port=port).replace("1000?", "1000").splitlines(keepends=True):
        name = line.split()[0]
        if name in discard:
            line = f"{name:<9} unix  -       -       n       -       -       discard\n"
        lines.append(line)
    return "".join(lines)


def instance_settings(root: Path, log: Path, domain: str = "mailbook.test") -> dict[str, str]:
    """The main.cf lines that make an instance private: its own places and identity."""
    return {
        "compatibility_level": "3.6",
        "queue_directory": str(root / "queue"),
        "data_directory": str(root / "data"),
        "meta_directory": "/etc/postfix",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": f"mx.{domain}",
        "mydomain": domain,
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "192.0.2.1/32",  # loopback is NOT trusted: relaying must be refused
        "maillog_file": str(log),
        "alias_maps": "",
        "alias_database": "",
        "smtputf8_enable": "no",
    }


# A load test from one client address: no local delivery, no per-client limits in the way,
# and no tarpit for a client whose recipients are refused (the unknown-user workload).
LOAD_TEST = {
    "mydestination": "localhost", "local_recipient_maps": "",
    "smtpd_client_connection_count_limit": "0", "smtpd_client_connection_rate_limit": "0",
    "smtpd_client_event_limit_exceptions": "127.0.0.0/8",
    "smtpd_error_sleep_time": "0", "smtpd_soft_error_limit": "100000",
    "smtpd_hard_error_limit": "100000", "smtpd_junk_command_limit": "100000",
}


class Postfix:
    def __init__(self, root: Path, maps: Path | None = None, submission: bool = False, delivery: str = "virtual",
                 settings: dict[str, str] | None = None, services: list[tuple[str, str, str]] | None = None,
                 discard: tuple[str, ...] = (), domain: str = "mailbook.test"):
        self.root, self.maps = root, maps
        # "virtual": Postfix's virtual(8) writes the maildirs; "lmtp": main.cf.snippet as
        # shipped, Dovecot's LMTP (a Dovecot with lmtp=True must run: Dovecot.start)
        self.delivery = delivery
        # settings: main.cf lines in place of main.cf.snippet's and the maildirs' (with
        # services: master.cf's mailbook services); discard: services that discard
        self.settings, self.services, self.discard, self.domain = settings, services, discard, domain
        self.queue = root / "queue"
        self.config = root / "etc"
        self.mail = root / "mail"
        self.log = root / "maillog"
        self.port = free_port()
        # master.cf.snippet's submission (STARTTLS) and submissions (implicit TLS) services,
        # if asked for, with a test certificate; SASL goes to Dovecot's socket at auth_socket
        # (Dovecot must listen there: install_dovecot(..., postfix=this))
        self.submission_port = free_port() if submission else None
        self.submissions_port = free_port() if submission else None
        self.tls_cert, self.tls_key = root / "tls-cert.pem", root / "tls-key.pem"
        self.auth_socket = root / "queue" / "private" / "auth"
        self.postfix = require_program("/usr/sbin/postfix")
        self.overrides: dict[str, str] = {}  # main.cf settings in place of the snippet's

    def configure(self) -> None:
        for d in (self.config, self.root / "queue", self.root / "data"):
            d.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "data", "postfix", "postfix")  # master.lock and friends
        if self.settings is None:
            self.mail.mkdir(exist_ok=True)
            os.chown(self.mail, VMAIL_UID, VMAIL_GID)
            os.chmod(self.mail, 0o770)
            settings = dict(snippet_settings(self.maps, self.delivery))  # mailbook's main.cf lines, as shipped
            services = snippet_services(self.maps)
        else:
            settings, services = dict(self.settings), self.services or []
        settings.update(instance_settings(self.root, self.log, self.domain))
        if self.settings is None:
            settings.update({  # deployment-specific values that the snippet leaves to the admin
                "virtual_mailbox_base": str(self.mail),
                "virtual_uid_maps": f"static:{VMAIL_UID}",
                "virtual_gid_maps": f"static:{VMAIL_GID}",
            })
        if self.submission_port:  # the certificate as `maps postconf --tls-cert/--tls-key` sets it
            certificate(self.root)
            settings.update({"smtpd_tls_cert_file": str(self.tls_cert), "smtpd_tls_key_file": str(self.tls_key)})
        settings.update(self.overrides)
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        master = with_services(master_cf(self.port, self.discard), services)
        if self.submission_port:
            master += submission_master_cf(submission_services(settings["smtpd_sender_login_maps"]),
                                           {"submission": self.submission_port, "submissions": self.submissions_port})
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

    def logged(self, pattern: str, timeout: float = 10) -> re.Match:
        """The first match of pattern in the log, waiting for it (a delivery's file can be in
        place before its status=sent line is written)."""
        deadline = time.time() + timeout
        while True:
            m = re.search(pattern, self.log_text())
            if m or time.time() > deadline:
                assert m, f"no {pattern!r} in the log:\n{self.log_text()[-3000:]}"
                return m
            time.sleep(0.2)

    def smtp(self, source: str | None = None) -> smtplib.SMTP:
        """A session on port 25's stand-in, from the local address source if given."""
        s = smtplib.SMTP("127.0.0.1", self.port, timeout=30, source_address=None if source is None else (source, 0))
        s.ehlo("client.mailbook.test")
        return s

    def submission(self, implicit_tls: bool = False, source: str | None = None) -> smtplib.SMTP:
        """A session on the submission port after STARTTLS and EHLO again, or on the
        submissions port (implicit TLS); the test certificate is the only one trusted.
        From the local address source if given (another loopback one, 127.0.0.2: a
        client that is not this host's 127.0.0.1, as a user's is not)."""
        context = client_context(self.tls_cert)
        bind = None if source is None else (source, 0)
        if implicit_tls:
            s = smtplib.SMTP_SSL("127.0.0.1", self.submissions_port, timeout=30, context=context, source_address=bind)
            s.ehlo("client.mailbook.test")
            return s
        s = smtplib.SMTP("127.0.0.1", self.submission_port, timeout=30, source_address=bind)
        s.ehlo("client.mailbook.test")
        s.starttls(context=context)
        s.ehlo("client.mailbook.test")
        return s

    def submit(self, login: str | None, password: str, sender: str, recipient: str,
               subject: str | None = None, implicit_tls: bool = False, source: str | None = None) -> tuple[int, str]:
        """On the submission port after STARTTLS (or on submissions, TLS from the start):
        log in (unless login is None), MAIL FROM sender, RCPT TO recipient; then, if a
        subject is given and all was accepted, send a message. The first reply that is not
        2xx, else the last one. From the local address source, if given."""
        with self.submission(implicit_tls, source) as s:
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
             headers: str = "", body: str = "hello from the mailbook tests", source: str | None = None) -> None:
        message = (f"From: {sender or 'MAILER-DAEMON@elsewhere.example'}\r\nTo: {recipient}\r\n"
                   f"Subject: {subject}\r\n{headers}\r\n{body}\r\n")
        with self.smtp(source) as s:
            s.sendmail(sender, [recipient], message)

    def sendmail(self, sender: str, recipient: str, subject: str) -> None:
        """A message handed to Postfix's sendmail(1) on this host, as a cron job or a web
        application sends: postdrop puts it in the maildrop queue, pickup and cleanup take
        it from there (non_smtpd_milters, not smtpd_milters, see it)."""
        message = f"From: {sender}\nTo: {recipient}\nSubject: {subject}\n\nsent with sendmail\n"
        r = run([require_program("/usr/sbin/sendmail"), "-C", str(self.config), "-f", sender, "--", recipient], input=message)
        assert r.returncode == 0, r.stdout + r.stderr

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


def install_postfix(root: Path, cluster, dbname: str, reader_password: str, submission: bool = False,
                    delivery: str = "virtual") -> Postfix:
    """`mailbook maps install` into root/maps (mailreader's password from a 0600 file),
    and a Postfix in root/postfix using them; not started."""
    pw = root / "reader.pw"
    write_private(pw, reader_password + "\n")
    cli(["maps", "install", "--dest", str(root / "maps"), "--port", str(cluster.port), "--dbname", dbname,
         "--password-file", str(pw)], check=True)
    return Postfix(root / "postfix", root / "maps", submission=submission, delivery=delivery)



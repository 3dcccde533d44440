"""What tests/test_admin_guide_wiring.py checks on the server the admin guide built: run as
root inside the fresh root after the guide's last step (tests/harness/guide.py), with the
shell the guide left (MAILBOOK_DSN exported). Writes {check: {"ok", "detail", "seconds"}}
as JSON to the file named by its argument. Standard library only, plus the `mailbook` the
guide installed. Each check is one function in CHECKS; add new ones there.
"""

from __future__ import annotations

import json
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

MAILBOOK = "/srv/mailbook/.venv/bin/mailbook"
USER = "foo@example.com"   # the guide's first mailbox


def sh(command: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=timeout)


def outside_address() -> str:
    """This machine's own address (not loopback, so not in Postfix's mynetworks): a client
    from elsewhere, whom smtpd_recipient_restrictions check in full."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))
        return s.getsockname()[0]


def rcpt(address: str, size: int = 0) -> tuple[int, str]:
    """MAIL FROM a sender elsewhere, RCPT TO address, on port 25: the RCPT answer."""
    with smtplib.SMTP(outside_address(), 25, timeout=30) as smtp:
        smtp.ehlo("client.example.net")
        smtp.mail("sender@example.net", [f"SIZE={size}"] if size else [])
        code, text = smtp.rcpt(address)
        smtp.rset()
        return code, text.decode(errors="replace")


def send(address: str, subject: str) -> None:
    message = f"From: sender@example.net\r\nTo: {address}\r\nSubject: {subject}\r\n\r\nguide check\r\n"
    with smtplib.SMTP(outside_address(), 25, timeout=30) as smtp:
        smtp.sendmail("sender@example.net", [address], message)


def wait_for(predicate, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def dovecot_errors() -> str:
    """Dovecot's recent errors (kept in memory: this root has no syslog)."""
    return " dovecot errors: " + sh("doveadm log errors | tail -5").stdout[-1200:]


def home(user: str) -> Path:
    r = sh(f"doveadm user -f home {user}")
    return Path(r.stdout.strip())


# -- the checks ---------------------------------------------------------------------------

def local_mail():
    """`echo x | sendmail root` is delivered locally (/var/mail/root), as cron's mail is."""
    token = f"guide-local-{uuid.uuid4().hex}"
    r = sh(f"echo {token} | sendmail root")
    if r.returncode != 0:
        return False, f"sendmail exit {r.returncode}: {r.stderr}"
    mbox = Path("/var/mail/root")
    if wait_for(lambda: mbox.exists() and token in mbox.read_text(errors="replace"), 60):
        return True, "delivered to /var/mail/root"
    return False, "not in /var/mail/root after 60 s; mailq: " + sh("mailq").stdout[-1500:]


def quota_at_next_rcpt():
    """With the shipped auth cache (ttl 900 s) and `mailbook dovecot follow` running as the
    guide installs it, a lowered and then a raised quota count at the next RCPT."""
    r = sh("doveconf -h auth_cache_ttl")
    ttl = r.stdout.strip()
    r = sh(f"{MAILBOOK} mailbox quota {USER} --bytes 1000")
    if r.returncode != 0:
        return False, f"quota --bytes 1000: {r.stdout}{r.stderr}"
    # the lowered limit, once seen, is what Dovecot caches for the next 15 minutes
    full = wait_for(lambda: rcpt(USER, 5000)[0] == 552, 30, 0.5)
    if not full:
        return False, f"no 552 30 s after --bytes 1000: {rcpt(USER, 5000)}" + dovecot_errors()
    r = sh(f"{MAILBOOK} mailbox quota {USER} --bytes 10000000")
    t0 = time.monotonic()
    if r.returncode != 0:
        return False, f"quota --bytes 10000000: {r.stdout}{r.stderr}"
    ok = wait_for(lambda: rcpt(USER, 5000)[0] == 250, 10, 0.2)
    took = time.monotonic() - t0
    if not ok:
        return False, (f"auth_cache_ttl {ttl}: still {rcpt(USER, 5000)} 10 s after raising the quota;"
                       f" follow's log: {sh('tail -5 /var/log/mailbook-dovecot-follow.log').stdout}" + dovecot_errors())
    return True, f"auth_cache_ttl {ttl}; 552 at 1000 bytes, 250 {took:.2f} s after raising it"


def sieve_filter():
    """A user's own Sieve script (the active one is ~/dovecot.sieve) files mail into a folder."""
    dir_ = home(USER)
    if not str(dir_).startswith("/"):
        return False, f"doveadm user -f home {USER}: {dir_}" + dovecot_errors()
    sh(f"install -d -o vmail -g vmail -m 0700 {dir_}")
    script = dir_ / "dovecot.sieve"
    script.write_text('require ["fileinto", "mailbox"];\n'
                      'if header :contains "subject" "guide-sieve" { fileinto :create "Filed"; stop; }\n')
    sh(f"chown vmail:vmail {script}")
    subject = f"guide-sieve {uuid.uuid4().hex}"
    send(USER, subject)

    def filed():
        for sub in ("new", "cur"):
            for f in (dir_ / ".Filed" / sub).glob("*") if (dir_ / ".Filed" / sub).is_dir() else []:
                if subject in f.read_text(errors="replace"):
                    return str(f)
        return None
    where = wait_for(filed, 60, 0.5)
    if where:
        return True, f"filed into {where}"
    return False, ("not in .Filed after 60 s; mailq: " + sh("mailq").stdout[-800:]
                   + " maildir: " + sh(f"find {dir_} -maxdepth 2").stdout[-800:] + dovecot_errors())


def doctor():
    """`mailbook doctor` passes, and so with the map files the guide installed."""
    out = []
    for args in ("", " --maps-dir /etc/postfix/pgsql"):
        r = sh(f"{MAILBOOK} doctor{args}")
        if r.returncode != 0:
            return False, f"mailbook doctor{args}: exit {r.returncode}\n{r.stdout[-2500:]}{r.stderr[-800:]}"
        out.append(f"doctor{args}: exit 0")
    return True, "; ".join(out)


def submission():
    """Submission as the guide wires it, with Debian's snakeoil certificate: on 587 no AUTH
    before STARTTLS, then the canary logs in, sends as itself (queued and delivered) and
    is refused (553) as another mailbox; on 465 the same login over TLS from the first byte."""
    user, password = "canary@example.com", Path("/root/canary.pw").read_text().splitlines()[0]
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE   # self-signed: a test certificate
    host = outside_address()
    with smtplib.SMTP(host, 587, timeout=30) as smtp:
        smtp.ehlo("client.example.net")
        if smtp.has_extn("auth"):
            return False, "587 offers AUTH before STARTTLS"
        smtp.starttls(context=tls)
        smtp.ehlo("client.example.net")
        smtp.login(user, password)
        subject = f"guide-submission {uuid.uuid4().hex}"
        smtp.sendmail(user, [USER], f"From: {user}\r\nTo: {USER}\r\nSubject: {subject}\r\n\r\nsent\r\n")
        code, _ = smtp.mail(USER)
        if code != 250:
            return False, f"587: MAIL FROM foo answered {code}"
        code, text = smtp.rcpt(USER)
        if code != 553:
            return False, f"587: canary sending as {USER}: {code} {text!r}, not 553"
        smtp.rset()
    with smtplib.SMTP_SSL(host, 465, timeout=30, context=tls) as smtp:
        smtp.ehlo("client.example.net")
        smtp.login(user, password)
    dir_ = home(USER)

    def arrived():
        return any(subject in f.read_text(errors="replace")
                   for sub in ("new", "cur") if (dir_ / sub).is_dir() for f in (dir_ / sub).iterdir())
    if not wait_for(arrived, 60, 0.5):
        return False, "submitted on 587 but not in foo's INBOX after 60 s; mailq: " + sh("mailq").stdout[-800:]
    return True, "587: no AUTH before STARTTLS, login, sent and delivered, 553 as foo; 465: login"


CHECKS = [local_mail, quota_at_next_rcpt, sieve_filter, doctor, submission]


def main(dest: str) -> int:
    results = {}
    for check in CHECKS:
        t0 = time.monotonic()
        try:
            ok, detail = check()
        except Exception as exc:  # one check's crash is its result, the others still run
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        results[check.__name__] = {"ok": ok, "detail": detail, "seconds": round(time.monotonic() - t0, 2)}
        print(f"guide check {check.__name__}: {'ok' if ok else 'FAILED'}: {detail}", flush=True)
    Path(dest).write_text(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

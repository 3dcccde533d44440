"""DKIM signing through the real daemons (issue 34): keys made by `mailbook dkim add` and
kept in the mail database, Debian's OpenDKIM reading the active ones as maildkim through
its OpenDBX pgsql backend (`mailbook dkim install`), a real Postfix passing mail through it
as the milter lines `dkim install` prints. Mail comes in on port 25 from loopback, on the
submission service from a mailbox logged in through a real Dovecot (`dovecot install`), and
from Postfix's sendmail on the server itself. Each delivered message's DKIM-Signature is
verified by dkimpy against the public key in the key table (dkim_keys_list()), or against
the records a real DNS server on loopback (Debian's unbound, tests/harness/dns.py) serves
from `mailbook dns` (rotations, submission, sendmail)."""

from __future__ import annotations

import base64
import email
import json
import subprocess
from contextlib import ExitStack, contextmanager

import dkim
import dns.resolver
import psycopg
import pytest

from mailbook.files import write_private
from tests.harness.database import mail_database
from tests.harness.dns import Unbound, unbound_server
from tests.harness.dovecot import install_dovecot
from tests.harness.opendkim import OpenDKIM
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, private_dir, remove, require_root, started

DB = "dkimsigning"
READER_PW = "reader-pw-dkim"
DKIM_PW = "dkim-pw-signer-0209"
AUTH_PW = "auth-pw-dkim-submission"
MAILBOX_PW = "pw pw pw pw"
DOMAINS = ("example.com", "example.org", "pending.example", "nokey.example")


@pytest.fixture(scope="module")
def admin_dsn(cluster):
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW, maildkim=DKIM_PW, mailauth=AUTH_PW) as dsn:
        for d in DOMAINS:
            cli(["domain", "add", d, "--dsn", dsn], check=True)
            cli(["mailbox", "add", f"user@{d}", "--password-stdin", "--dsn", dsn], input=MAILBOX_PW + "\n", check=True)
        yield dsn


@pytest.fixture(scope="module")
def stack(admin_dsn, cluster):
    """Postfix (port 25 and the submission services) with OpenDKIM as its milter; both
    stopped afterwards, also after a failed start."""
    root = private_dir("mailbook-dkim-")
    with ExitStack() as stop:
        stop.callback(remove, root)
        postfix = install_postfix(root, cluster, DB, READER_PW, submission=True)
        signer = OpenDKIM(root / "opendkim", cluster, DB, DKIM_PW)
        postfix.overrides.update(signer.postconf())
        postfix.overrides["milter_default_action"] = "tempfail"  # a signer that fails shows as a deferral here
        started(stop, signer)
        started(stop, postfix)
        yield postfix, signer


@pytest.fixture(scope="module")
def dovecot(stack, cluster):
    """The Dovecot whose auth socket the submission services log in through."""
    postfix, _ = stack
    root = postfix.root.parent
    write_private(root / "auth.pw", AUTH_PW + "\n")
    with ExitStack() as stop:
        yield started(stop, install_dovecot(root, postfix.mail, "--port", str(cluster.port), "--dbname", DB,
                                            "--password-file", str(root / "auth.pw"), postfix=postfix))


def public_keys(dsn: str) -> dict[bytes, bytes]:
    """The TXT records `mailbook dns` will publish, from the key table's public parts."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET ROLE mailadmin")
        rows = conn.execute("SELECT domain, selector, algorithm, public_key FROM dkim_keys_list()").fetchall()
    return {f"{s}._domainkey.{d}.".encode(): f"v=DKIM1; k={a.split('-')[0]}; p={p}".encode() for d, s, a, p in rows}


def delivered(stack, sender: str, recipient: str, subject: str) -> bytes:
    postfix, signer = stack
    postfix.send(recipient, subject, sender=sender)
    local, domain = recipient.split("@")
    return postfix.delivered(f"{domain}/{local}/", subject).read_bytes()


def signature(message: bytes) -> dict[str, str] | None:
    header = email.message_from_bytes(message)["DKIM-Signature"]
    if header is None:
        return None
    return {k.strip(): v.strip() for k, v in (t.split("=", 1) for t in "".join(header.split()).split(";") if "=" in t)}


def verifies(message: bytes, dsn: str) -> bool:
    records = public_keys(dsn)
    return dkim.verify(message, dnsfunc=lambda name, timeout=5: records.get(name, b""))


def test_each_domain_signs_with_its_active_key(admin_dsn, stack):
    """A message from a mailbox of each of two domains leaves signed with that domain's
    active key and the signature verifies."""
    cli(["dkim", "add", "example.com", "--selector", "mb202612", "--dsn", admin_dsn], check=True)
    cli(["dkim", "activate", "example.com", "mb202612", "--dsn", admin_dsn], check=True)
    added = cli(["dkim", "add", "example.org", "--selector", "mb202611", "--dsn", admin_dsn], check=True)
    assert 'mb202611._domainkey.example.org. IN TXT "v=DKIM1; k=rsa; p=' in added.stdout
    cli(["dkim", "activate", "example.org", "mb202611", "--dsn", admin_dsn], check=True)
    for sender, recipient, selector, algorithm in (
            ("user@example.com", "user@example.org", "mb202612", "rsa-sha256"),
            ("user@example.org", "user@example.com", "mb202611", "rsa-sha256"),
            ("User@Example.COM", "user@example.org", "mb202612", "rsa-sha256")):  # keys are lower case
        message = delivered(stack, sender, recipient, f"signed by {sender}")
        sig = signature(message)
        assert sig is not None, stack[1].log_text()
        assert (sig["d"].lower(), sig["s"], sig["a"]) == (sender.split("@")[1].lower(), selector, algorithm)
        assert verifies(message, admin_dsn), message.decode(errors="replace")


def active_selectors(dsn: str) -> dict[str, str]:
    """Each domain's active key's selector, as `dkim list` shows it."""
    listed = cli(["dkim", "list", "--dsn", dsn], check=True).stdout
    return {line.split()[0]: line.split()[1] for line in listed.splitlines()[1:] if line.split()[3] == "active"}


def serve_zones(dsn: str, server: Unbound) -> None:
    """The loopback DNS server answers with what `mailbook dns` prints for every hosted domain."""
    server.serve({d: [line for line in cli(["dns", d, "--mx", "mx.example.net", "--dsn", dsn], check=True
                                           ).stdout.splitlines() if not line.startswith(";")] for d in DOMAINS})


def assert_signed_as_sent(stack, server, dsn: str, send, how: str) -> None:
    """Mail sent by send(sender, subject) from a mailbox of each hosted domain: signed with
    that domain's active key, verifying with the key the loopback DNS answers; unsigned
    from a domain without an active key."""
    active = active_selectors(dsn)
    assert set(active) >= {"example.com", "example.org"} and set(DOMAINS) - set(active), active
    serve_zones(dsn, server)
    for d in DOMAINS:
        subject = f"{how} from {d}"
        send(f"user@{d}", subject)
        message = stack[0].delivered("example.com/user/", subject).read_bytes()
        sig = signature(message)
        if d not in active:
            assert sig is None, message.decode(errors="replace")
            continue
        assert sig is not None, (d, stack[1].log_text()[-2000:], stack[0].log_text()[-2000:])
        assert (sig["d"], sig["s"], sig["a"]) == (d, active[d], "rsa-sha256"), sig
        assert verifies_in_dns(message, server), message.decode(errors="replace")


def test_submission_signed_verifies_in_dns(admin_dsn, stack, dovecot, server):
    """A mailbox of each hosted domain logs in on the submission service (STARTTLS, SASL
    through Dovecot) from 127.0.0.2, which is not in OpenDKIM's InternalHosts as a user's
    address is not: its mail is signed because the client logged in, with its domain's
    active key, and verifies with the key in the loopback DNS zone. The same From: from
    there on port 25 without a login is not signed."""
    def send(sender: str, subject: str) -> None:
        code, msg = stack[0].submit(sender, MAILBOX_PW, sender, "user@example.com", subject, source="127.0.0.2")
        assert code == 250, (code, msg)
    assert_signed_as_sent(stack, server, admin_dsn, send, "submission")
    assert stack[0].logged(r"client=\S+\[127\.0\.0\.2\], sasl_method=PLAIN, sasl_username=user@example\.org")
    stack[0].send("user@example.com", "no login from 127.0.0.2", sender="user@example.org", source="127.0.0.2")
    forged = stack[0].delivered("example.com/user/", "no login from 127.0.0.2").read_bytes()
    assert signature(forged) is None, forged.decode(errors="replace")


def test_sendmail_signed_verifies_in_dns(admin_dsn, stack, server):
    """Mail handed to Postfix's sendmail on the server (pickup, cleanup: non_smtpd_milters)
    leaves signed with the sender domain's active key, verifying with the DNS zone's key."""
    assert_signed_as_sent(stack, server, admin_dsn, lambda sender, subject: stack[0].sendmail(
        sender, "user@example.com", subject), "sendmail")


def signer_lines(admin_dsn: str, stack, *extra: str) -> tuple[int, list[tuple[str, str]]]:
    """(exit code, the `dkim signer` lines of `doctor --live --json` as (status, detail))."""
    postfix, signer = stack
    r = cli(["doctor", "--dsn", admin_dsn, "--live", "--json", "--config-dir", str(postfix.config),
             "--opendkim-config", str(signer.config), *extra])
    return r.exit_code, [(c["status"], c["detail"]) for c in json.loads(r.stdout) if c["check"] == "dkim signer"]


@contextmanager
def postconf(postfix, *args: str):
    """main.cf and master.cf changed by `postconf -c ... ARGS` until the block ends."""
    files = [postfix.config / "main.cf", postfix.config / "master.cf"]
    before = [f.read_text() for f in files]
    r = subprocess.run(["postconf", "-c", str(postfix.config), *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        for f, text in zip(files, before):
            f.write_text(text)


def test_doctor_live_dkim_signer(admin_dsn, stack):
    """With active keys, `doctor --live` passes the signer when Postfix's milters name
    OpenDKIM's socket and it negotiates; each broken piece is one failing line saying what
    to run: non_smtpd_milters without it, a submission service's -o smtpd_milters emptied,
    OpenDKIM's configuration unreadable, OpenDKIM stopped. milter_default_action = accept
    (main.cf's, or the milter's own in a `{ ... }` group), which `dkim install` sets, is a
    note on the passing line: that line fails when the signer is down."""
    postfix, signer = stack
    milter = f"inet:127.0.0.1:{signer.port}"
    assert active_selectors(admin_dsn)
    _, lines = signer_lines(admin_dsn, stack)
    assert len(lines) == 1 and lines[0][0] == "pass", lines
    assert f"OpenDKIM at {milter} answers (milter protocol version 6); smtpd_milters, non_smtpd_milters name it" \
        in lines[0][1], lines

    with postconf(postfix, "-e", "non_smtpd_milters ="):
        code, lines = signer_lines(admin_dsn, stack)
    fails = [d for s, d in lines if s == "fail"]
    assert code == 1 and len(fails) == 1, lines
    assert fails[0].startswith(f"non_smtpd_milters = (empty) does not name OpenDKIM's {milter}") \
        and "mail from sendmail on this host leaves unsigned: mailbook dkim install" in fails[0], fails

    service = f"127.0.0.1:{postfix.submission_port}"
    with postconf(postfix, "-P", f"{service}/inet/smtpd_milters="):
        code, lines = signer_lines(admin_dsn, stack)
    fails = [d for s, d in lines if s == "fail"]
    assert code == 1 and len(fails) == 1 and fails[0].startswith(
        f"master.cf's {service} -o smtpd_milters = (empty) does not name OpenDKIM's {milter}"), lines

    code, lines = signer_lines(admin_dsn, stack, "--opendkim-config", str(signer.root / "nowhere.conf"))
    assert code == 1 and len(lines) == 1 and lines[0][0] == "fail" and "nowhere.conf" in lines[0][1] \
        and "mailbook dkim install --config" in lines[0][1], lines

    with postconf(postfix, "-e", "milter_default_action = accept"):
        _, lines = signer_lines(admin_dsn, stack)
    assert [s for s, _ in lines] == ["pass"] and \
        "; milter_default_action = accept (smtpd_milters, non_smtpd_milters): while OpenDKIM does not answer," \
        " mail leaves unsigned" in lines[0][1], lines
    with postconf(postfix, "-e", f"smtpd_milters = {{ {milter}, default_action=accept }}"):
        _, lines = signer_lines(admin_dsn, stack)  # a per-milter default_action counts for that milter
    assert [s for s, _ in lines] == ["pass"] and "accept (smtpd_milters):" in lines[0][1], lines

    signer.stop()
    try:
        code, lines = signer_lines(admin_dsn, stack)
    finally:
        signer.start()
    assert code == 1 and len(lines) == 1 and lines[0][0] == "fail", lines
    assert f"OpenDKIM at {milter} does not answer (Connection refused): is it running?" in lines[0][1], lines


def test_no_active_key_no_signature(admin_dsn, stack):
    """A domain without a key, or with a pending key only, sends unsigned mail."""
    cli(["dkim", "add", "pending.example", "--dsn", admin_dsn], check=True)
    for sender in ("user@nokey.example", "user@pending.example"):
        message = delivered(stack, sender, "user@example.com", f"unsigned from {sender}")
        assert signature(message) is None, message.decode(errors="replace")


def test_rotation_and_retirement(admin_dsn, stack):
    """Activating the next key retires the old one: mail is signed with the new selector and
    verifies; after the active key is retired the domain's mail leaves unsigned."""
    cli(["dkim", "add", "example.com", "--selector", "mb202701", "--dsn", admin_dsn], check=True)
    before = delivered(stack, "user@example.com", "user@example.org", "before the switch")
    assert signature(before)["s"] == "mb202612"  # pending: not used yet
    cli(["dkim", "activate", "example.com", "mb202701", "--dsn", admin_dsn], check=True)
    after = delivered(stack, "user@example.com", "user@example.org", "after the switch")
    assert signature(after)["s"] == "mb202701"
    assert verifies(after, admin_dsn) and verifies(before, admin_dsn)  # both published: both verify
    listed = cli(["dkim", "list", "--domain", "example.com", "--dsn", admin_dsn], check=True).stdout
    assert [line.split()[1:4] for line in listed.splitlines()[1:]] == [
        ["mb202612", "rsa-sha256", "retired"], ["mb202701", "rsa-sha256", "active"]]
    cli(["dkim", "retire", "example.com", "mb202701", "--dsn", admin_dsn], check=True)
    gone = delivered(stack, "user@example.com", "user@example.org", "after retirement")
    assert signature(gone) is None


def test_install_file_and_postconf(stack, tmp_path):
    """`dkim install` writes its file 0640 (maildkim's password in it, not on stdout) and
    prints the milter lines; a milter already in main.cf stays."""
    _, signer = stack
    assert signer.config.stat().st_mode & 0o777 == 0o640
    assert DKIM_PW in signer.config.read_text() and DKIM_PW not in signer.install.stdout
    assert signer.postconf() == {"smtpd_milters": f"inet:127.0.0.1:{signer.port}",
                                 "non_smtpd_milters": f"inet:127.0.0.1:{signer.port}",
                                 "milter_default_action": "accept"}
    (tmp_path / "main.cf").write_text("compatibility_level = 3.6\nsmtpd_milters = inet:127.0.0.1:11332\n")
    pw = tmp_path / "pw"
    pw.write_text(DKIM_PW + "\n")
    r = cli(["dkim", "install", "--config", str(tmp_path / "o.conf"), "--config-dir", str(tmp_path),
             "--password-file", str(pw), "--dry-run"], check=True)
    assert "'smtpd_milters = inet:127.0.0.1:11332, inet:127.0.0.1:8891'" in r.stdout, r
    assert not (tmp_path / "o.conf").exists()
    pw.write_text("bad@password\n")
    bad = cli(["dkim", "install", "--config", str(tmp_path / "o.conf"), "--password-file", str(pw)])
    assert bad.exit_code == 1 and "cannot go into OpenDKIM's dsn" in bad.stderr and "bad@password" not in bad.stderr


def test_dkim_cli_errors(admin_dsn):
    """Errors are one line naming the value, and change nothing."""
    r = cli(["dkim", "add", "nothere.test", "--dsn", admin_dsn])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and '"nothere.test" is not hosted here' in r.stderr, r
    r = cli(["dkim", "activate", "example.com", "nosuch", "--dsn", admin_dsn])
    assert r.exit_code == 1 and 'no DKIM key with selector "nosuch"' in r.stderr and "P0002" in r.stderr, r
    # Debian's OpenDKIM 2.11 signs with one algorithm for every key: Ed25519 is kept, not activated
    added = cli(["dkim", "add", "nokey.example", "--algorithm", "ed25519", "--selector", "mb202612e", "--dsn", admin_dsn],
                check=True)
    assert 'mb202612e._domainkey.nokey.example. IN TXT "v=DKIM1; k=ed25519; p=' in added.stdout
    r = cli(["dkim", "activate", "nokey.example", "mb202612e", "--dsn", admin_dsn])
    assert r.exit_code == 1 and "signs rsa-sha256 keys only" in r.stderr and "0A000" in r.stderr, r
    r = cli(["dkim", "add", "example.com", "--selector", "Bad_Sel", "--dsn", admin_dsn])
    assert r.exit_code == 1 and 'selector "Bad_Sel" is not one DNS label' in r.stderr, r
    with psycopg.connect(admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM dkim_key_staging").fetchone() == (0,)
        assert conn.execute("SELECT selector, state FROM dkim_keys WHERE domain = 'nokey.example'").fetchall() == [
            ("mb202612e", "pending")]
        # the private key is PKCS#8 PEM, and the p= value is its public half
        private, public = conn.execute("SELECT private_key, public_key FROM dkim_keys WHERE domain = 'nokey.example'"
                                       ).fetchone()
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=private.encode(),
                         capture_output=True, check=True).stdout
    assert base64.b64encode(der[-32:]).decode() == public


@pytest.fixture(scope="module")
def server():
    """unbound on loopback serving the rotation's zone; stopped afterwards."""
    with unbound_server("mailbook-dkim-dns-") as unbound:
        yield unbound


def key_records(dsn: str, domain: str) -> dict[str, str]:
    """The DKIM lines of `mailbook dns DOMAIN` (zone-file syntax, strings split), by selector."""
    text = cli(["dns", domain, "--mx", "mx.example.net", "--dsn", dsn], check=True).stdout
    return {line.split(".")[0]: line for line in text.splitlines() if "._domainkey." in line and not line.startswith(";")}


def verifies_in_dns(message: bytes, server: Unbound) -> bool:
    """dkimpy's verdict with the public key as the loopback DNS server answers it."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], server.port

    def dnsfunc(name, timeout=5):
        try:
            return b"".join(b"".join(r.strings) for r in res.resolve(name.decode(), "TXT"))
        except dns.resolver.NXDOMAIN:
            return b""
    return dkim.verify(message, dnsfunc=dnsfunc)


def advance(dsn: str, server: Unbound, *extra: str):
    return cli(["dkim", "advance", *extra, "--resolver", server.address, "--dsn", dsn])


def states(dsn: str, domain: str) -> list[list[str]]:
    listed = cli(["dkim", "list", "--domain", domain, "--dsn", dsn], check=True).stdout
    return [[line.split()[1], line.split()[3]] for line in listed.splitlines()[1:]]


def test_domain_add_with_dkim(admin_dsn):
    """`domain add --dkim` adds the domain and its first key, pending as a rotation's, and
    prints the record; when the key cannot be made (no openssl) or the domain cannot be
    added, neither is."""
    r = cli(["domain", "add", "rotate.example", "--dkim", "--dsn", admin_dsn], check=True)
    assert r.stdout.startswith("added domain rotate.example (transport virtual:)\n"), r
    assert '._domainkey.rotate.example. IN TXT "v=DKIM1; k=rsa; p=' in r.stdout, r
    cli(["mailbox", "add", "user@rotate.example", "--password-stdin", "--dsn", admin_dsn], input="pw pw pw pw\n",
        check=True)
    assert [s for _, s in states(admin_dsn, "rotate.example")] == ["pending"]
    r = cli(["domain", "add", "nokeys.example", "--dkim", "--dsn", admin_dsn], env={"PATH": "/nonexistent"})
    assert r.exit_code == 1 and "openssl is not installed" in r.stderr and r.stderr.count("\n") == 1, r
    r = cli(["domain", "add", "example.org", "--dkim", "--dsn", admin_dsn])
    assert r.exit_code == 1 and '"example.org"' in r.stderr and r.stderr.count("\n") == 1, r
    with psycopg.connect(admin_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM transports WHERE domain = 'nokeys.example'").fetchone() == (0,)
        assert conn.execute("SELECT selector FROM dkim_keys WHERE domain = 'example.org'").fetchall() == [("mb202611",)]
        assert conn.execute("SELECT count(*) FROM dkim_key_staging").fetchone() == (0,)


def test_rotation_waits_for_dns(admin_dsn, stack, server):
    """The next key signs only once DNS answers with it: unpublished or published with
    another p=, it stays pending and mail is signed with the current key; published, the
    next message is signed with it and verifies, and a message signed before the switch
    still verifies; `dkim advance` retires the old key once its delay is over."""
    # the first key (domain add --dkim): published, advance makes it the signing key
    (first, line), = key_records(admin_dsn, "rotate.example").items()
    server.serve({"rotate.example": [line]})
    r = advance(admin_dsn, server)
    assert r.exit_code == 0 and r.stdout == f"rotate.example: {first} is active (DNS answers with its key)\n", r
    before = delivered(stack, "user@rotate.example", "user@example.org", "rotation: before")
    assert signature(before)["s"] == first and verifies_in_dns(before, server)

    rotated = cli(["dkim", "rotate", "rotate.example", "--dsn", admin_dsn], check=True).stdout
    nxt = rotated.split("next DKIM key ")[1].split()[0]
    assert nxt != first and nxt.startswith(first) and "IN TXT" in rotated  # mbYYYYMM taken: mbYYYYMMDD
    r = advance(admin_dsn, server, "rotate.example")
    assert r.exit_code == 0, r
    assert r.stdout == (f"rotate.example: next key {nxt} pending: no TXT record at {nxt}._domainkey.rotate.example."
                        " yet (mailbook dns rotate.example prints it)\n"), r
    waiting = delivered(stack, "user@rotate.example", "user@example.org", "rotation: not published")
    assert signature(waiting)["s"] == first

    wrong = line.replace(f"{first}._domainkey", f"{nxt}._domainkey")  # the old key's p= at the new name
    server.serve({"rotate.example": [line, wrong]})
    r = advance(admin_dsn, server)
    assert r.exit_code == 1 and "holds another key" in r.stdout and len(r.stdout.splitlines()) == 1, r
    assert r.stderr == "mailbook: 1 rotation(s) need attention\n", r
    assert states(admin_dsn, "rotate.example") == [[first, "active"], [nxt, "pending"]]

    server.serve({"rotate.example": list(key_records(admin_dsn, "rotate.example").values())})
    r = advance(admin_dsn, server)
    assert r.exit_code == 0, r
    assert r.stdout.startswith(f"rotate.example: {nxt} is active (DNS answers with its key); {first} signs no more,"
                               " its record stays published until "), r
    after = delivered(stack, "user@rotate.example", "user@example.org", "rotation: after")
    assert signature(after)["s"] == nxt and verifies_in_dns(after, server)
    assert verifies_in_dns(before, server)  # the old record is still published
    assert states(admin_dsn, "rotate.example") == [[first, "retiring"], [nxt, "active"]]
    listed = cli(["dkim", "list", "--domain", "rotate.example", "--json", "--dsn", admin_dsn], check=True).stdout
    assert [k["retire_after"] is not None for k in json.loads(listed)] == [True, False]
    assert set(key_records(admin_dsn, "rotate.example")) == {first, nxt}  # `dns` still wants both
    r = advance(admin_dsn, server)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", ""), r  # nothing to do: silent, for cron

    with psycopg.connect(admin_dsn) as conn:  # the delay is over (7 days by default)
        assert conn.execute("SELECT retire_after - retired FROM dkim_keys WHERE selector = %s AND domain = %s",
                            (first, "rotate.example")).fetchone()[0].days == 7
        conn.execute("UPDATE dkim_keys SET retire_after = now() - interval '1 minute'"
                     " WHERE domain = 'rotate.example' AND state = 'retiring'")
    r = advance(admin_dsn, server)
    assert r.exit_code == 0 and r.stdout == (f"rotate.example: {first} is retired; its TXT record"
                                             f" {first}._domainkey.rotate.example. may be removed\n"), r
    assert states(admin_dsn, "rotate.example") == [[first, "retired"], [nxt, "active"]]
    assert set(key_records(admin_dsn, "rotate.example")) == {nxt}


def test_advance_retire_delay_and_errors(admin_dsn, server):
    """--retire-after sets the old key's delay in days; rotating while a rotation is under
    way, advancing against a DNS server that does not answer, or naming a domain that is not
    hosted, is one line and exit 1."""
    r = cli(["dkim", "rotate", "example.org", "--selector", "mb202702", "--dsn", admin_dsn], check=True)
    r = cli(["dkim", "rotate", "example.org", "--selector", "mb202703", "--dsn", admin_dsn])
    assert r.exit_code == 1 and 'its next DKIM key "mb202702" is pending' in r.stderr and "55000" in r.stderr, r
    r = cli(["dkim", "advance", "example.org", "--resolver", "127.0.0.1:9", "--dsn", admin_dsn])
    assert r.exit_code == 1 and "no answer for mb202702._domainkey.example.org." in r.stdout, r
    r = cli(["dkim", "advance", "exmaple.org", "--resolver", "127.0.0.1:9", "--dsn", admin_dsn])
    assert r.exit_code == 1 and 'domain "exmaple.org" is not hosted here' in r.stderr and r.stderr.count("\n") == 1, r
    server.serve({"example.org": [key_records(admin_dsn, "example.org")["mb202702"]]})
    r = advance(admin_dsn, server, "example.org", "--retire-after", "2")
    assert r.exit_code == 0 and "mb202611 signs no more" in r.stdout, r
    with psycopg.connect(admin_dsn) as conn:
        assert conn.execute("SELECT retire_after - retired FROM dkim_keys WHERE domain = 'example.org'"
                            " AND selector = 'mb202611'").fetchone()[0].days == 2


def test_alias_domain_and_catch_all_signing(admin_dsn, stack):
    """Mail From: an alias domain is signed with the alias domain's own active key when it
    has one (aligned), else with its target's (d= the target); an address only a catch-all
    covers is signed with its domain's key. Each signature verifies."""
    cli(["domain", "add", "alias.example", "--alias-of", "example.com", "--dsn", admin_dsn], check=True)
    cli(["domain", "add", "ownkey.example", "--alias-of", "example.com", "--dsn", admin_dsn], check=True)
    cli(["dkim", "add", "example.com", "--selector", "mb202703", "--dsn", admin_dsn], check=True)
    cli(["dkim", "activate", "example.com", "mb202703", "--dsn", admin_dsn], check=True)
    cli(["dkim", "add", "ownkey.example", "--selector", "mb202612", "--dsn", admin_dsn], check=True)
    cli(["dkim", "activate", "ownkey.example", "mb202612", "--dsn", admin_dsn], check=True)
    cli(["alias", "add", "@example.com", "user@example.com", "--dsn", admin_dsn], check=True)
    for sender, d, s in (("user@alias.example", "example.com", "mb202703"),
                         ("user@ownkey.example", "ownkey.example", "mb202612"),
                         ("anyone@example.com", "example.com", "mb202703")):  # only the catch-all knows it
        message = delivered(stack, sender, "user@nokey.example", f"alias signing {sender}")
        sig = signature(message)
        assert sig is not None and (sig["d"], sig["s"]) == (d, s), (sender, sig, stack[1].log_text()[-2000:])
        assert verifies(message, admin_dsn), message.decode(errors="replace")

"""DKIM signing through the real daemons (issue 34): keys made by `mailbook dkim add` and
kept in the mail database, Debian's OpenDKIM reading the active ones as maildkim through
its OpenDBX pgsql backend (`mailbook dkim install`), a real Postfix passing mail through it
as the milter lines `dkim install` prints. Each delivered message's DKIM-Signature is
verified by dkimpy against the public key in the key table (dkim_keys_list(); a DNS server
on loopback comes with `mailbook dns`)."""

from __future__ import annotations

import base64
import email
import subprocess
from contextlib import ExitStack

import dkim
import psycopg
import pytest

from tests.harness.database import mail_database
from tests.harness.opendkim import OpenDKIM
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, private_dir, remove, require_root, started

DB = "dkimsigning"
READER_PW = "reader-pw-dkim"
DKIM_PW = "dkim-pw-signer-0209"
DOMAINS = ("example.com", "example.org", "pending.example", "nokey.example")


@pytest.fixture(scope="module")
def admin_dsn(cluster):
    require_root()
    with mail_database(cluster, DB, mailreader=READER_PW, maildkim=DKIM_PW) as dsn:
        for d in DOMAINS:
            cli(["domain", "add", d, "--dsn", dsn], check=True)
            cli(["mailbox", "add", f"user@{d}", "--password-stdin", "--dsn", dsn], input="pw pw pw pw\n", check=True)
        yield dsn


@pytest.fixture(scope="module")
def stack(admin_dsn, cluster):
    """Postfix with OpenDKIM as its milter; both stopped afterwards, also after a failed start."""
    root = private_dir("mailbook-dkim-")
    with ExitStack() as stop:
        stop.callback(remove, root)
        postfix = install_postfix(root, cluster, DB, READER_PW)
        signer = OpenDKIM(root / "opendkim", cluster, DB, DKIM_PW)
        postfix.overrides.update(signer.postconf())
        postfix.overrides["milter_default_action"] = "tempfail"  # a signer that fails shows as a deferral here
        started(stop, signer)
        started(stop, postfix)
        yield postfix, signer


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

"""`mailbook dns` (issue 34): the records a hosted domain needs, in zone-file syntax, and
`--check` asking a real DNS server (Debian's unbound on loopback, tests/harness/dns.py)
serving a test zone built from those very lines: one left out and one changed must be
reported as exactly that, with exit 1; the complete zone exits 0. The DKIM key published
in that zone verifies a message signed with the domain's private key. The mail clients'
autoconfig files parse and name the right host and ports."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import dkim
import dns.resolver
import dns.zone
import psycopg
import pytest

from tests.harness.database import mail_database
from tests.harness.dns import unbound_server
from tests.harness.process import cli, require_root

DB = "dnsrecords"
OPTIONS = ["--mx", "mx1.example.net", "--mx", "mx2.example.net", "--ipv4", "192.0.2.25", "--ipv6", "2001:db8::/64"]


@pytest.fixture(scope="module")
def admin_dsn(cluster):
    require_root()
    with mail_database(cluster, DB) as dsn:
        for d in ("example.com", "example.org"):
            cli(["domain", "add", d, "--dsn", dsn], check=True)
        for selector, algorithm in (("mb202601", "rsa"), ("mb202612", "rsa"), ("mb202612e", "ed25519")):
            cli(["dkim", "add", "example.com", "--selector", selector, "--algorithm", algorithm, "--dsn", dsn], check=True)
        cli(["dkim", "activate", "example.com", "mb202601", "--dsn", dsn], check=True)
        cli(["dkim", "activate", "example.com", "mb202612", "--dsn", dsn], check=True)  # mb202601 retires
        yield dsn


@pytest.fixture(scope="module")
def server():
    """unbound on 127.0.0.1 and a port of its own; stopped afterwards, also after a failed start."""
    with unbound_server("mailbook-dns-") as unbound:
        yield unbound


def zone(dsn: str, *extra: str) -> str:
    return cli(["dns", "example.com", *OPTIONS, *extra, "--dsn", dsn], check=True).stdout


def records(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(";")]


def test_dns_prints_zone_file(admin_dsn):
    """One comment line per record, absolute names, TXT strings of at most 255 bytes; the
    whole text parses as a zone; the active and the pending DKIM keys are in it, the retired
    one not; MX, SPF from the options, DMARC p=none, MTA-STS, TLS-RPT and the clients' SRV."""
    text = zone(admin_dsn)
    lines = text.splitlines()
    assert all(a.startswith("; ") and not b.startswith(";") for a, b in zip(lines[::2], lines[1::2])), text
    parsed = dns.zone.from_text(text, origin="example.com.", relativize=False, check_origin=False)
    names = {n.to_text() for n in parsed.nodes}
    assert {"mb202612._domainkey.example.com.", "mb202612e._domainkey.example.com.", "_dmarc.example.com.",
            "_mta-sts.example.com.", "mta-sts.example.com.", "_smtp._tls.example.com.", "_imaps._tcp.example.com.",
            "_submissions._tcp.example.com.", "_submission._tcp.example.com.", "_autodiscover._tcp.example.com.",
            "autoconfig.example.com.", "autodiscover.example.com."} < names
    assert "mb202601._domainkey.example.com." not in names  # retired
    assert all(line.split()[0].endswith(".") for line in records(text))
    dkim_rsa = parsed.find_rdataset("mb202612._domainkey.example.com.", "TXT")[0]
    assert len(dkim_rsa.strings) == 2 and all(len(s) <= 255 for s in dkim_rsa.strings)
    assert "example.com. 3600 IN MX 10 mx1.example.net." in lines and "example.com. 3600 IN MX 20 mx2.example.net." in lines
    assert 'example.com. 3600 IN TXT "v=spf1 mx ip4:192.0.2.25 ip6:2001:db8::/64 -all"' in lines
    assert '_dmarc.example.com. 3600 IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@example.com"' in lines
    assert "_submissions._tcp.example.com. 3600 IN SRV 0 1 465 mx1.example.net." in lines


def test_mta_sts_id_follows_policy(admin_dsn):
    """--mta-sts-policy prints the policy file; the _mta-sts id changes when the policy does."""
    policy = zone(admin_dsn, "--mta-sts-policy")
    assert policy == "version: STSv1\nmode: testing\nmx: mx1.example.net\nmx: mx2.example.net\nmax_age: 86400\n"
    ids = {zone(admin_dsn, *mode).split("v=STSv1; id=")[1].split('"')[0] for mode in ([], ["--mta-sts-mode", "enforce"])}
    assert len(ids) == 2 and all(i.isalnum() and len(i) <= 32 for i in ids)


def test_dns_bad_input_one_line(admin_dsn):
    """A domain not hosted, no --mx, a bad address: one line on stderr, exit 1."""
    for args, message in ((["nowhere.example", "--mx", "mx.example.net"], 'domain "nowhere.example" is not hosted here'),
                          (["example.com"], "--mx HOST"),
                          (["example.com", "--mx", "mx.example.net", "--ipv4", "2001:db8::1"], "is not an IPv4"),
                          (["example.com", "--mx", "mx.example.net", "--check", "--resolver", "nameserver"], "--resolver")):
        r = cli(["dns", *args, "--dsn", admin_dsn])
        assert r.exit_code == 1 and message in r.stderr and len(r.stderr.splitlines()) == 1, r


def test_dns_check_missing_and_different(admin_dsn, server):
    """A zone without the DMARC record and with another SPF text (holding an escape
    sequence): --check names exactly those two, shows what it found escaped, and exits 1;
    the complete zone: all present, exit 0."""
    lines = records(zone(admin_dsn))
    broken = [line for line in lines if not line.startswith("_dmarc.")]
    broken = [line.replace('"v=spf1 mx ip4:192.0.2.25', '"v=spf1 mx \\027[31m ip4:192.0.2.99') for line in broken]
    broken.append('example.com. 3600 IN TXT "google-site-verification=abc"')  # another kind of TXT: ignored
    server.serve({"example.com": broken})
    r = cli(["dns", "example.com", *OPTIONS, "--check", "--resolver", server.address, "--dsn", admin_dsn])
    assert r.exit_code == 1, (r, server.log_text())
    states = [line.split()[:3] for line in r.stdout.splitlines() if not line.startswith(" ")]
    assert [s for s in states if s[0] != "present"] == [["different", "TXT", "example.com."],
                                                        ["missing", "TXT", "_dmarc.example.com."]], r.stdout
    assert len(states) == len(lines)
    assert "found:  v=spf1 mx ?[31m ip4:192.0.2.99" in r.stdout and "\x1b" not in r.stdout
    assert r.stderr == f"mailbook: 2 of {len(lines)} record(s) missing or different\n"

    server.serve({"example.com": lines})
    r = cli(["dns", "example.com", *OPTIONS, "--check", "--resolver", server.address, "--dsn", admin_dsn])
    assert r.exit_code == 0 and r.stdout.endswith(f"all {len(lines)} records present\n"), (r, server.log_text())


def test_zone_dkim_key_verifies(admin_dsn, server):
    """The active key's record, as the loopback server answers it, verifies a message
    signed with that key's private half (read here as the superuser; mailadmin cannot)."""
    server.serve({"example.com": records(zone(admin_dsn))})
    with psycopg.connect(admin_dsn) as conn:
        private = conn.execute("SELECT private_key FROM dkim_keys WHERE domain = 'example.com' AND state = 'active'"
                               ).fetchone()[0]
    message = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: signed\r\n\r\nbody\r\n"
    signed = dkim.sign(message, b"mb202612", b"example.com", private.encode(), include_headers=[b"from", b"to", b"subject"])
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], server.port

    def dnsfunc(name, timeout=5):  # dkimpy asks for the TXT; the answer comes from unbound
        return b"".join(b"".join(r.strings) for r in res.resolve(name.decode(), "TXT"))

    assert dkim.verify(signed + message, dnsfunc=dnsfunc)
    assert not dkim.verify(signed + message.replace(b"body", b"forged"), dnsfunc=dnsfunc)


def test_autoconfig_files(admin_dsn, tmp_path):
    """--autoconfig DIR writes Thunderbird's config-v1.1.xml and Outlook's autodiscover.xml
    where the clients ask for them; both parse and name --host with IMAP 993 and
    submission 465/587."""
    r = cli(["dns", "example.com", *OPTIONS, "--host", "imap.example.net", "--autoconfig", str(tmp_path),
             "--dsn", admin_dsn], check=True)
    tb, ad = tmp_path / "mail" / "config-v1.1.xml", tmp_path / "autodiscover" / "autodiscover.xml"
    assert r.stdout == f"wrote {tb}\nwrote {ad}\n"
    provider = ET.parse(tb).getroot().find("emailProvider")
    assert provider.get("id") == "example.com" and provider.findtext("domain") == "example.com"
    servers = [(s.tag, s.get("type"), s.findtext("hostname"), s.findtext("port"), s.findtext("socketType"))
               for s in provider if s.tag.endswith("Server")]
    assert servers == [("incomingServer", "imap", "imap.example.net", "993", "SSL"),
                       ("outgoingServer", "smtp", "imap.example.net", "465", "SSL"),
                       ("outgoingServer", "smtp", "imap.example.net", "587", "STARTTLS")]
    ns = {"a": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}
    root = ET.parse(ad).getroot()
    assert root.tag == "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"
    protocols = [(p.findtext("a:Type", namespaces=ns), p.findtext("a:Server", namespaces=ns), p.findtext("a:Port", namespaces=ns))
                 for p in root.iterfind("a:Response/a:Account/a:Protocol", ns)]
    assert protocols == [("IMAP", "imap.example.net", "993"), ("SMTP", "imap.example.net", "465"),
                         ("SMTP", "imap.example.net", "587")]

"""The DNS records a hosted domain needs to receive and send well (issue 34), printed in
zone-file syntax by `mailbook dns DOMAIN`, checked against what a resolver answers with
`--check`, and the mail clients' autoconfig files (`--autoconfig DIR`).

Where each value comes from, once: the DKIM records from the database
(dkim_dns_records(): pending and active keys, scope-checked); everything else from the
command line (--mx, --ipv4/--ipv6, --rua, --host), because those are facts of the
deployment (which hosts, which addresses) that no table of the mail database holds.

Policies start gentle on purpose: DMARC p=none and MTA-STS mode testing ask receivers to
report, not to reject, so a record that is wrong (a forgotten outbound address in SPF, a
certificate without the MX name) shows up in the reports before any mail is lost; tighten
them (--dmarc-policy, --mta-sts-mode) once the reports are clean."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from mailbook import Failure
from mailbook.terminal import printable

TTL = 3600
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$")


@dataclass(frozen=True)
class Record:
    name: str      # absolute, trailing dot
    type: str      # MX, TXT, CNAME, SRV
    data: str      # the rdata as a zone file writes it; for TXT the whole text, unquoted and unsplit
    purpose: str   # the comment line above it

    def rdata_text(self) -> str:
        return " ".join(f'"{s}"' for s in txt_strings(self.data)) if self.type == "TXT" else self.data

    def line(self) -> str:
        return f"{self.name} {TTL} IN {self.type} {self.rdata_text()}"


def txt_strings(text: str) -> list[str]:
    """A TXT record's text as character-strings of at most 255 bytes each (RFC 1035 3.3.14;
    a DKIM RSA 2048 record needs two). The records here are ASCII without quotes or
    backslashes, so a byte is a character."""
    if not text.isascii() or '"' in text or "\\" in text:
        raise Failure(f"TXT text {printable(text)!r} is not plain ASCII")
    return [text[i:i + 255] for i in range(0, len(text), 255)] or [""]


def host(value: str, what: str) -> str:
    """A host name, lower-cased, without the trailing dot; Failure naming it if it is none."""
    h = value.lower().rstrip(".")
    if not _HOST.match(h):
        raise Failure(f"{what} {printable(value)!r} is not a host name")
    return h


def mta_sts_policy(mx: list[str], mode: str = "testing") -> str:
    """The policy file served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461):
    senders that support MTA-STS deliver only to these MX hosts over verified TLS. One day's
    max_age while testing, a week when enforcing."""
    max_age = 86400 if mode == "testing" else 604800
    return "version: STSv1\n" + f"mode: {mode}\n" + "".join(f"mx: {h}\n" for h in mx) + f"max_age: {max_age}\n"


def policy_id(policy: str) -> str:
    """The _mta-sts record's id: derived from the policy text, so it changes exactly when
    the policy does (RFC 8461 3.1: 1 to 32 letters and digits)."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def records(domain: str, dkim: list[tuple[str, str, str]], mx: list[str], ipv4: list[str], ipv6: list[str],
            rua: str | None = None, client_host: str | None = None, dmarc_policy: str = "none",
            mta_sts_mode: str = "testing") -> list[Record]:
    """Every record domain needs. dkim: (name, state, txt) from dkim_dns_records()."""
    d = host(domain, "domain")
    if not mx:
        raise Failure("give the host(s) that receive mail for the domain: --mx HOST (repeat it for a backup MX)")
    mx = [host(h, "--mx") for h in mx]
    client = host(client_host, "--host") if client_host else mx[0]
    rua = rua or f"postmaster@{d}"
    if not _ADDRESS.match(rua):
        raise Failure(f"--rua {printable(rua)!r} is not a mail address")
    spf = ["v=spf1", "mx"]
    for flag, addresses, version in (("--ipv4", ipv4, 4), ("--ipv6", ipv6, 6)):
        for a in addresses:
            try:
                net = ipaddress.ip_network(a, strict=False)
            except ValueError:
                net = None
            if net is None or net.version != version:
                raise Failure(f"{flag} {printable(a)!r} is not an IPv{version} address or network")
            spf.append(f"ip{version}:{net.network_address if net.num_addresses == 1 else net}")
    spf.append("-all")
    policy = mta_sts_policy(mx, mta_sts_mode)
    out = [Record(f"{d}.", "MX", f"{10 * (i + 1)} {h}.", f"MX: where other servers deliver mail for {d}"
                  + (" (backup)" if i else "")) for i, h in enumerate(mx)]
    out.append(Record(f"{d}.", "TXT", " ".join(spf),
                      "SPF: who may send as @" + d + " (the MX hosts" + (" and the outbound addresses" if len(spf) > 3
                                                                        else "") + "; everyone else fails)"))
    for name, state, txt in dkim:
        out.append(Record(name, "TXT", txt, f"DKIM: the public key of selector {name.split('.')[0]} ({state})"))
    out += [
        Record(f"_dmarc.{d}.", "TXT", f"v=DMARC1; p={dmarc_policy}; rua=mailto:{rua}",
               f"DMARC: policy p={dmarc_policy} for mail failing SPF and DKIM alignment; aggregate reports to {rua}"),
        Record(f"_mta-sts.{d}.", "TXT", f"v=STSv1; id={policy_id(policy)}",
               "MTA-STS: the policy's id (changes with the policy; print it with --mta-sts-policy)"),
        Record(f"mta-sts.{d}.", "CNAME", f"{client}.",
               f"MTA-STS: the web host serving https://mta-sts.{d}/.well-known/mta-sts.txt"),
        Record(f"_smtp._tls.{d}.", "TXT", f"v=TLSRPTv1; rua=mailto:{rua}",
               f"TLS-RPT: where senders report TLS failures delivering to {d}"),
        Record(f"_imaps._tcp.{d}.", "SRV", f"0 1 993 {client}.", "mail clients: IMAP over TLS (RFC 6186, 8314)"),
        Record(f"_submissions._tcp.{d}.", "SRV", f"0 1 465 {client}.", "mail clients: submission over TLS (RFC 8314)"),
        Record(f"_submission._tcp.{d}.", "SRV", f"0 1 587 {client}.", "mail clients: submission with STARTTLS (RFC 6186)"),
        Record(f"_autodiscover._tcp.{d}.", "SRV", f"0 1 443 {client}.", "mail clients: Outlook's Autodiscover"),
        Record(f"autoconfig.{d}.", "CNAME", f"{client}.", "mail clients: Thunderbird's autoconfig (--autoconfig DIR)"),
        Record(f"autodiscover.{d}.", "CNAME", f"{client}.", "mail clients: Outlook's autodiscover.xml (--autoconfig DIR)"),
    ]
    return out


def zone_text(recs: list[Record]) -> str:
    return "".join(f"; {r.purpose}\n{r.line()}\n" for r in recs)


# -- --check --------------------------------------------------------------------------

def resolver(address: str | None) -> dns.resolver.Resolver:
    """The system resolver (/etc/resolv.conf), or the server at IP[:PORT]."""
    if address is None:
        return dns.resolver.Resolver()
    ip, port = address, 53
    if m := re.fullmatch(r"\[(.+)\](?::(\d+))?|([^:]+):(\d+)", address):
        ip, port = (m[1], int(m[2] or 53)) if m[1] else (m[3], int(m[4]))
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise Failure(f"--resolver {printable(address)!r} is not IP[:PORT] ([IPv6]:PORT)") from None
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port = [ip], port
    return r


def _txt(rdata) -> str:
    return b"".join(rdata.strings).decode("utf-8", errors="backslashreplace")


def _same(rec: Record, rdata) -> bool:
    if rec.type == "TXT":  # the strings may be split elsewhere; DKIM and friends ignore whitespace
        return "".join(_txt(rdata).split()) == "".join(rec.data.split())
    return rdata == dns.rdata.from_text(dns.rdataclass.IN, rec.type, rec.data)


def _tag(text: str) -> str:
    """What kind of TXT record: its v= tag (v=spf1, v=DMARC1, ...), else the text."""
    first = text.split(";")[0].split()[0] if text.strip() else ""
    return first.lower() if first.lower().startswith("v=") else text


def _answer(name: str, rtype: str, res: dns.resolver.Resolver) -> list:
    """The records of that name and type ([] for none, also NXDOMAIN); Failure when the
    resolver gives no answer at all."""
    try:
        answer = res.resolve(name, rtype, raise_on_no_answer=False, lifetime=10)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise Failure(f"no answer for {name} {rtype}: {printable(exc)}") from None
    return list(answer.rrset or [])


def txt_texts(name: str, res: dns.resolver.Resolver) -> list[str]:
    """The texts of name's TXT records, each one's strings joined (`dkim advance` hands
    them to advance_dkim_key(), which looks for the key's p= in them)."""
    return [_txt(r) for r in _answer(name, "TXT", res)]


def check(rec: Record, res: dns.resolver.Resolver) -> tuple[str, list[str]]:
    """(present | missing | different, what was found that differs)."""
    rrset = _answer(rec.name, rec.type, res)
    if rec.type == "TXT" and rec.data.startswith("v=spf1"):  # the apex holds other TXT records too
        rrset = [r for r in rrset if _tag(_txt(r)) == "v=spf1"]
    if not rrset:
        return "missing", []
    if any(_same(rec, r) for r in rrset):
        return "present", []
    return "different", [_txt(r) if rec.type == "TXT" else r.to_text() for r in rrset]


# -- mail clients' autoconfig ---------------------------------------------------------

def _element(parent, tag: str, text: str | None = None, **attrs):
    e = ET.SubElement(parent, tag, attrs)
    e.text = text
    return e


def thunderbird_config(domain: str, client: str) -> str:
    """Thunderbird's config-v1.1.xml (served at https://autoconfig.DOMAIN/mail/config-v1.1.xml)."""
    root = ET.Element("clientConfig", version="1.1")
    provider = _element(root, "emailProvider", id=domain)
    _element(provider, "domain", domain)
    _element(provider, "displayName", domain)
    _element(provider, "displayShortName", domain)
    for kind, port, socket in (("imap", 993, "SSL"), ("smtp", 465, "SSL"), ("smtp", 587, "STARTTLS")):
        server = _element(provider, "incomingServer" if kind == "imap" else "outgoingServer", type=kind)
        for tag, text in (("hostname", client), ("port", str(port)), ("socketType", socket),
                          ("authentication", "password-cleartext"), ("username", "%EMAILADDRESS%")):
            _element(server, tag, text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def autodiscover_response(client: str) -> str:
    """Outlook's Autodiscover POX response (served for POST /autodiscover/autodiscover.xml):
    IMAP on 993 and SMTP on 465 with TLS, 587 with STARTTLS; the login is the address."""
    root = ET.Element("Autodiscover", xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006")
    response = _element(root, "Response",
                        xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a")
    account = _element(response, "Account")
    _element(account, "AccountType", "email")
    _element(account, "Action", "settings")
    for kind, port, tls in (("IMAP", 993, ("SSL", "on")), ("SMTP", 465, ("SSL", "on")), ("SMTP", 587, ("Encryption", "TLS"))):
        protocol = _element(account, "Protocol")
        for tag, text in (("Type", kind), ("Server", client), ("Port", str(port)), ("DomainRequired", "off"),
                          ("SPA", "off"), tls, ("AuthRequired", "on")):
            _element(protocol, tag, text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_autoconfig(directory: Path, domain: str, client: str) -> list[Path]:
    """DIR/mail/config-v1.1.xml and DIR/autodiscover/autodiscover.xml: the paths the clients
    ask for, so DIR can be the document root of autoconfig.DOMAIN and autodiscover.DOMAIN."""
    out = []
    for path, text in ((directory / "mail" / "config-v1.1.xml", thunderbird_config(domain, client)),
                       (directory / "autodiscover" / "autodiscover.xml", autodiscover_response(client))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
        out.append(path)
    return out

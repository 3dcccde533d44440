"""DKIM: key pairs made here, kept in the mail database (migration 0209, sql/api/65_dkim.sql),
and OpenDKIM's configuration, which reads each domain's active key from there as maildkim.

Keys are made by `openssl genpkey` (the `cryptography` package is no dependency of
mailbook): the private key travels through pipes only, never a command line or a file,
and goes into the database by COPY (whose data the server never logs), then
add_dkim_key() takes it in the same transaction.

Why OpenDKIM: Debian's (12 and 13) links OpenDBX, so with libopendbx1-pgsql its KeyTable
and SigningTable are plain SQL lookups on the view dkim_signing. rspamd's dkim_signing
reads keys from files or Redis only, which would put a copy of every private key outside
PostgreSQL's privileges. OpenDKIM 2.11.0~beta2 (Debian 12 and 13) signs ed25519-sha256 too,
but with one global SignatureAlgorithm for every key: Ed25519 keys are stored (pending),
and activated once a per-key algorithm (upstream since 2026) reaches Debian."""

from __future__ import annotations

import base64
import datetime
import re
import subprocess

import psycopg

from mailbook import Failure

ALGORITHMS = {"rsa": "rsa-sha256", "ed25519": "ed25519-sha256"}
_GENPKEY = {"rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "ed25519": ["-algorithm", "ED25519"]}
# what OpenDKIM's DSN parser splits on (backend://user:password@port+host/db/key=value?...)
_DSN_UNSAFE = re.compile(r"[:@/?+=\s%]")
DEFAULT_SOCKET = "inet:8891@127.0.0.1"


def _openssl(args: list[str], data: bytes | None = None) -> bytes:
    try:
        r = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    except FileNotFoundError:
        raise Failure("openssl is not installed (Debian: apt-get install openssl)") from None
    if r.returncode != 0:
        raise Failure(f"openssl {args[0]} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def generate(kind: str) -> tuple[str, str]:
    """A new key pair of kind rsa (2048 bits) or ed25519: (private key as PEM PKCS#8,
    public key as the DNS record's p= value)."""
    private = _openssl(["genpkey", *_GENPKEY[kind]])
    der = _openssl(["pkey", "-pubout", "-outform", "DER"], private)
    # RSA: p= is the SubjectPublicKeyInfo; Ed25519 (RFC 8463): the bare 32-byte key
    public = der[-32:] if kind == "ed25519" else der
    return private.decode(), base64.b64encode(public).decode()


def default_selector(kind: str, today: datetime.date | None = None) -> str:
    """mbYYYYMM for RSA, mbYYYYMMe for Ed25519: a date in it, so the next key has a new name."""
    today = today or datetime.date.today()
    return f"mb{today:%Y%m}" + ("e" if kind == "ed25519" else "")


def add_key(conn: psycopg.Connection, domain: str, kind: str, selector: str | None = None,
            rotate: bool = False) -> tuple[str, str]:
    """Make a key pair and store it as a pending key of domain; (selector, p= value).
    rotate: as the domain's next key (rotate_dkim_key(), RSA), which `dkim advance`
    activates once its record is published; the default selector is then one the domain
    has not used (mbYYYYMM, else mbYYYYMMDD)."""
    if rotate and selector is None:
        with conn.transaction():
            used = {s for (s,) in conn.execute("SELECT selector FROM dkim_keys_list(%s)", (domain,))}
        today = datetime.date.today()
        selector = next((s for s in (default_selector(kind, today), f"mb{today:%Y%m%d}") if s not in used),
                        f"mb{today:%Y%m%d}")  # both taken: add_dkim_key() says so
    selector = selector or default_selector(kind)
    private, public = generate(kind)
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY dkim_key_staging (private_key, public_key) FROM STDIN") as copy:
            copy.write_row((private, public))
        if rotate:
            cur.execute("SELECT rotate_dkim_key(%s, %s)", (domain, selector))
        else:
            cur.execute("SELECT add_dkim_key(%s, %s, %s)", (domain, selector, ALGORITHMS[kind]))
        return selector, cur.fetchone()[0]


def txt_line(domain: str, selector: str, kind: str, public: str) -> str:
    """The record to publish, as `dkim add` and `dkim rotate` print it."""
    return f'{selector}._domainkey.{domain.lower()}. IN TXT "v=DKIM1; k={kind}; p={public}"'


def opendkim_dsn(host: str, port: int, dbname: str, user: str, password: str, datacol: str) -> str:
    for what, value in (("host", host), ("database name", dbname), ("user", user), ("password", password)):
        if not value or _DSN_UNSAFE.search(value):
            raise Failure(f"the {what} cannot go into OpenDKIM's dsn: (it splits on : @ / ? + = % and spaces);"
                          f" set a password without them: mailbook role password {user} --generate FILE"
                          if what == "password" else
                          f"the {what} {value!r} cannot go into OpenDKIM's dsn: (it splits on : @ / ? + = % and spaces)")
    return (f"dsn:pgsql://{user}:{password}@{port}+{host}/{dbname}"
            f"/table=dkim_signing?keycol=sender_domain?datacol={datacol}")


def opendkim_conf(host: str, port: int, dbname: str, user: str, password: str,
                  socket: str = DEFAULT_SOCKET) -> str:
    """opendkim.conf: sign (Mode s) mail from InternalHosts (loopback) and authenticated
    clients with the key dkim_signing names for the sender's domain: its own active key,
    or an alias domain's target's (sql/api/65_dkim.sql says why)."""
    keys = opendkim_dsn(host, port, dbname, user, password, "domain,selector,private_key")
    signing = opendkim_dsn(host, port, dbname, user, password, "sender_domain")
    return f"""\
# Written by `mailbook dkim install`; holds {user}'s password (mode 0640, group opendkim).
# OpenDKIM signs outgoing mail with the keys in the mail database: SigningTable maps the
# sender's domain to a key name (that domain again), KeyTable the key name to (d=, s=,
# private key); both read the view dkim_signing by sender_domain as {user} (opendkim.conf(5)).
Syslog                  yes
SyslogSuccess           yes
Mode                    s
Canonicalization        relaxed/simple
OversignHeaders         From
Socket                  {socket}
UMask                   007
UserID                  opendkim
PidFile                 /run/opendkim/opendkim.pid
KeyTable                {keys}
SigningTable            {signing}
"""


def milter_address(socket: str) -> str:
    """OpenDKIM's Socket as Postfix names it: inet:PORT@HOST -> inet:HOST:PORT,
    local:PATH -> unix:PATH."""
    if m := re.fullmatch(r"inet6?:(\d+)@(.+)", socket):
        return f"inet:{m[2]}:{m[1]}"
    if socket.startswith(("local:", "unix:")):
        return "unix:" + socket.split(":", 1)[1]
    raise Failure(f"socket {socket!r} is not inet:PORT@HOST or local:PATH")

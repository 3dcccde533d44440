"""Data the tests and the benchmarks generate: hostile strings (tests/test_fuzz.py,
test_vacation_text.py) and the end-to-end benchmarks' mail data at scale (benchmarks/e2e.py,
compiled.py, follow.py), the same rows for mailbook, PostfixAdmin and hash: maps."""

from __future__ import annotations

import functools
import io
import os
import subprocess

# Strings that have broken software somewhere: quoting, Postfix's and Dovecot's % escapes,
# paths, control and confusable characters, lengths at the limits.
HOSTILE = ["", " ", "'", "''", '"', "\\", "\\'", "%", "%s", "%u@%d", "%%", "$1", "$$", ";", "--", "/*", "*/",
           "'; DROP TABLE users; --", "' OR '1'='1", "../", "../../etc/", "/etc/passwd", "a/../b/", "\n", "\r\n",
           "\t", "\x01", "\x7f", "é", "ａ", "ⅰ", "ǅ", "İ", "ß", "\u200b", "\u202e", "\ufeff", "😀", "@", "@@", ".", "..",
           "-", "xn--", "a" * 300, "x" * 65 + "@example.com", "foo@example.com", "Foo@Example.COM", "example.com",
           "{PLAIN}pw", "{BLF-CRYPT}", "$2y$10$", "virtual:", "smtp:[relay]", "NULL", "null"]


# -- the end-to-end data: the same for mailbook, PostfixAdmin and hash: --------------------

BIG = "big.example.com"          # most mailboxes and every alias live here
ALIAS_DOMAIN = "alias.example.net"  # an alias domain of BIG
CATCHALL = "catchall.example.org"   # a hosted domain with a catch-all
RELAY = "relay.example.com"         # a backup-MX domain (relayed, no mailboxes)
# MAILBOOK_BENCH_DATA: the share of this data to generate (default 1: 100,064 mailboxes).
# The benchmarks' smoke runs in CI (tests/test_benchmark_smoke.py) take 0.05, 5,040
# mailboxes: loading the whole data into every script's databases was most of their
# time, and a smoke run proves a script completes, not its figures. Never below what the
# smallest runs send (--scale 0.01: recipients 0 to 1,999 of BIG, aliases 0 to 99).
DATA_SHARE = float(os.environ.get("MAILBOOK_BENCH_DATA", "1"))
BIG_MAILBOXES = max(2000, int(60_000 * DATA_SHARE))
ALIASES = max(100, int(20_000 * DATA_SHARE))
FILLER_DOMAINS, FILLER_EACH = 97, max(2, int(412 * DATA_SHARE))  # 100,000 mailboxes, 100 hosted domains in all
CATCHALL_MAILBOXES = 100
# one well-formed hash for every mailbox: lookups never read it, only the import checks it
HASH = "{BLF-CRYPT}$2a$05$" + "a" * 53
PFA_HASH = "$1$abcdefgh$ABCDEFGHIJKLMNOPQRSTU."  # PostfixAdmin's default md5crypt form

@functools.cache
def smtp_source_appends() -> bool:
    """Whether this Postfix's smtp-source -N appends its recipient number to the local part
    (3.9 and later: "-t m@big" sends m0@big, m1@big, ...) instead of putting it first (3.8
    and earlier: 0m@big, 1m@big, ...); Postfix's changelog, 20230923."""
    version = subprocess.run(["postconf", "-dh", "mail_version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    return tuple(int(x) for x in version.split(".")[:2]) >= (3, 9)


def numbered(i: int, local: str) -> str:
    """The local part smtp-source -N sends as recipient number i of `-t local@...`: the
    mailboxes ("m") and aliases ("a") are named so on either side of Postfix 3.9."""
    return f"{local}{i}" if smtp_source_appends() else f"{i}{local}"


def mailbook_csv() -> tuple[str, str]:
    """(mailboxes with their domains, aliases with alias domains and catch-alls) for
    `mailbook import`."""
    out = io.StringIO()
    out.write("kind,address,password_hash,realname\n")
    filler = [f"d{i}.example.com" for i in range(FILLER_DOMAINS)]
    for d in [BIG, CATCHALL, *filler]:
        out.write(f"domain,{d},,\n")
    out.writelines(f"mailbox,{numbered(i, 'm')}@{BIG},{HASH},User {i}\n" for i in range(BIG_MAILBOXES))
    out.writelines(f"mailbox,{numbered(i, 'm')}@{CATCHALL},{HASH},\n" for i in range(CATCHALL_MAILBOXES))
    for d in filler:
        out.writelines(f"mailbox,u{i}@{d},{HASH},\n" for i in range(FILLER_EACH))
    aliases = io.StringIO()
    aliases.write("kind,address,destination\n")
    aliases.write(f"domain,{ALIAS_DOMAIN},{BIG}\n")
    aliases.write(f"alias,@{CATCHALL},{numbered(0, 'm')}@{BIG}\n")
    aliases.writelines(f"alias,{numbered(i, 'a')}@{BIG},{numbered(i, 'm')}@{BIG}\n" for i in range(ALIASES))
    return out.getvalue(), aliases.getvalue()


def all_mailboxes() -> list[tuple[str, str, str]]:
    """(local part, domain, maildir) of every mailbox, as mailbook stores the maildir."""
    out = [(numbered(i, "m"), BIG, f"{BIG}/{numbered(i, 'm')}/") for i in range(BIG_MAILBOXES)]
    out += [(numbered(i, "m"), CATCHALL, f"{CATCHALL}/{numbered(i, 'm')}/") for i in range(CATCHALL_MAILBOXES)]
    for d in range(FILLER_DOMAINS):
        out += [(f"u{i}", f"d{d}.example.com", f"d{d}.example.com/u{i}/") for i in range(FILLER_EACH)]
    return out


def hosted_domains() -> list[str]:
    return [BIG, CATCHALL, *(f"d{i}.example.com" for i in range(FILLER_DOMAINS))]

"""`mailbook hba`: the pg_hba.conf lines this setup needs, and nothing broader.

Postfix (as mailreader), Dovecot (as mailauth, and mailquota for usage), a webmail's
password form (as mailwebmail) and OpenDKIM (as maildkim) connect to the mail database only, over
the local socket or loopback, with SCRAM passwords; mail hosts elsewhere get `hostssl`
lines for the networks named. Admins (members of mailadmin, superusers) are left to the
site's own lines."""

from __future__ import annotations

import ipaddress
import re

from mailbook import Failure

SERVICE_ROLES = ("mailreader", "mailauth", "mailquota", "mailwebmail", "maildkim")
WIDEST = {4: 16, 6: 48}  # the widest --network accepted, as a prefix length
_NAME = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


def hba_lines(dbname: str = "mail", roles: tuple[str, ...] = SERVICE_ROLES,
              networks: tuple[str, ...] = ()) -> list[str]:
    for name in (dbname, *roles):
        if not _NAME.match(name):
            raise Failure(f"{name!r} is not a plain PostgreSQL name (lower-case letters, digits, _ and $)")
    nets = []
    for net in networks:
        try:
            parsed = ipaddress.ip_network(net, strict=True)
        except ValueError as exc:
            raise Failure(f"{net!r} is not a network address such as 192.0.2.10/32: {exc}") from None
        # the mail hosts' own networks: a /0 is the whole internet, and a password is
        # then the only thing between it and the service roles
        mapped = parsed.version == 6 and parsed.subnet_of(ipaddress.ip_network("::ffff:0:0/96"))
        if mapped and parsed.prefixlen - 96 < WIDEST[4]:  # IPv4 written as IPv6: IPv4's limit
            raise Failure(f"{parsed} is IPv4's {parsed.network_address.ipv4_mapped}/{parsed.prefixlen - 96}, wider than"
                          f" a /{WIDEST[4]}: name the mail hosts' own networks, one --network each")
        if parsed.prefixlen < WIDEST[parsed.version]:
            raise Failure(f"{parsed} is wider than a /{WIDEST[parsed.version]}: it would let that much of the"
                          " internet try the service roles' passwords; name the mail hosts' own networks,"
                          " one --network each")
        nets.append(str(parsed))
    rows = [("# TYPE", "DATABASE", "USER", "ADDRESS", "METHOD")]
    for role in roles:
        rows.append(("local", dbname, role, "", "scram-sha-256"))
        rows += [("host", dbname, role, loopback, "scram-sha-256") for loopback in ("127.0.0.1/32", "::1/128")]
        rows += [("hostssl", dbname, role, net, "scram-sha-256") for net in nets]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    return [
        f"# mailbook: who may reach the {dbname} database, and how. Put these lines above any",
        "# broader line (PostgreSQL takes the first that matches), then SELECT pg_reload_conf();",
        "# and check SELECT * FROM pg_hba_file_rules WHERE error IS NOT NULL; returns nothing.",
        *table,
    ]


def patroni_fragment(lines: list[str]) -> list[str]:
    """hba_lines() as items of Patroni's `postgresql.pg_hba` list: Patroni writes
    pg_hba.conf itself from that list (and overwrites what else is there), so the lines
    go into each node's patroni.yml instead, indented to sit under `pg_hba:`."""
    out = ["    # mailbook (`mailbook hba --patroni`): paste below `pg_hba:` in every node's patroni.yml,",
           "    # after the lines Patroni needs (replication), then: patronictl reload CLUSTER"]
    for line in lines:
        if line.startswith("#"):
            continue  # the pg_hba.conf advice: Patroni keeps the order and reloads itself
        out.append(f"    - {' '.join(line.split())}")
    return out

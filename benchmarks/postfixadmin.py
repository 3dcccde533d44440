"""Round trips per recipient: mailbook's maps next to PostfixAdmin's documented query set,
on the same data, replaying the lookups Postfix makes for one recipient.

PostfixAdmin's DOCUMENTS/POSTFIX_CONF.txt lists three tables for virtual_alias_maps (the
alias, the alias domain's rewrite, the alias domain's catch-all) and two for
virtual_mailbox_maps (the mailbox, the alias domain's mailbox), and keeps a self-alias
row for every mailbox so that a catch-all cannot swallow it. The schema and queries below
are written here from that description (PostgreSQL syntax, our data copied in); they
are not PostfixAdmin's files.

The replay follows Postfix's documented order (virtual(5), pgsql_table(5)): for
virtual_alias_maps the key user@domain, then @domain; the tables of one parameter in
turn until one answers; a query that uses %u is not sent for a key without a local
part; every new address is expanded again, one that maps to itself is not. Then
virtual_mailbox_maps for each final address in a hosted domain (user@domain, then
@domain). Each query is sent as Postfix sends it: plain text, one round trip.
"""

from __future__ import annotations

import random
import statistics
import time

import psycopg

from mailbook.postfix.maps import expand

PFA_SCHEMA = """
CREATE SCHEMA pfa;
CREATE TABLE pfa.domain (domain text PRIMARY KEY, transport text, backupmx boolean NOT NULL DEFAULT false,
                         active boolean NOT NULL DEFAULT true);
CREATE TABLE pfa.mailbox (username text PRIMARY KEY, maildir text NOT NULL, domain text NOT NULL,
                          active boolean NOT NULL DEFAULT true);
CREATE TABLE pfa.alias (address text PRIMARY KEY, goto text NOT NULL, domain text NOT NULL,
                        active boolean NOT NULL DEFAULT true);
CREATE TABLE pfa.alias_domain (alias_domain text PRIMARY KEY, target_domain text NOT NULL,
                               active boolean NOT NULL DEFAULT true);
INSERT INTO pfa.domain SELECT domain, transport, false, active FROM public.transports;
INSERT INTO pfa.alias_domain SELECT domain, alias_of, active FROM public.transports WHERE alias_of IS NOT NULL;
INSERT INTO pfa.mailbox SELECT email, maildir, domain, active FROM public.users;
-- every mailbox's self-alias, then the aliases with their destinations comma-joined
INSERT INTO pfa.alias SELECT email, email, domain, active FROM public.users;
INSERT INTO pfa.alias SELECT alias, string_agg(email, ',' ORDER BY email), min(domain), bool_or(active)
  FROM public.aliases GROUP BY alias;
ANALYZE pfa.domain, pfa.mailbox, pfa.alias, pfa.alias_domain;
GRANT USAGE ON SCHEMA pfa TO mailreader;
GRANT SELECT ON ALL TABLES IN SCHEMA pfa TO mailreader;
"""

# (virtual_alias_maps tables, virtual_mailbox_maps tables), Postfix templates
POSTFIXADMIN = (
    ["SELECT goto FROM pfa.alias WHERE address = '%s' AND active",
     "SELECT goto FROM pfa.alias a, pfa.alias_domain d WHERE d.alias_domain = '%d'"
     " AND a.address = '%u' || '@' || d.target_domain AND a.active AND d.active",
     "SELECT goto FROM pfa.alias a, pfa.alias_domain d WHERE d.alias_domain = '%d'"
     " AND a.address = '@' || d.target_domain AND a.active AND d.active"],
    ["SELECT maildir FROM pfa.mailbox WHERE username = '%s' AND active",
     "SELECT maildir FROM pfa.mailbox m, pfa.alias_domain d WHERE d.alias_domain = '%d'"
     " AND m.username = '%u' || '@' || d.target_domain AND m.active AND d.active"],
)


class Replay:
    def __init__(self, conn: psycopg.Connection, alias_maps: list[str], mailbox_maps: list[str], hosted: set[str]):
        self.conn, self.alias_maps, self.mailbox_maps, self.hosted = conn, alias_maps, mailbox_maps, hosted
        self.trips = 0

    def _first(self, maps: list[str], key: str) -> list[str] | None:
        for template in maps:
            sql = expand(template, key)
            if sql is None:
                continue  # Postfix sends nothing for this key
            self.trips += 1
            rows = self.conn.execute(sql).fetchall()
            if rows:
                return [d.strip() for (value,) in rows for d in value.split(",")]
        return None

    def expand_alias(self, address: str, depth: int = 0) -> list[str]:
        domain = address.rpartition("@")[2]
        result = self._first(self.alias_maps, address)
        if result is None:
            result = self._first(self.alias_maps, "@" + domain)
        if result is None or depth >= 5:
            return [address]
        out = []
        for dest in result:
            out += [dest] if dest == address else self.expand_alias(dest, depth + 1)
        return out

    def recipient(self, address: str) -> tuple[bool, int]:
        """(deliverable here or forwarded, round trips) for one RCPT."""
        self.trips = 0
        finals = self.expand_alias(address)
        ok = False
        for final in finals:
            domain = final.rpartition("@")[2]
            if domain not in self.hosted:
                ok = True  # forwarded elsewhere
                continue
            found = self._first(self.mailbox_maps, final)
            if found is None:
                found = self._first(self.mailbox_maps, "@" + domain)
            ok = ok or found is not None
        return ok, self.trips


def recipient_classes(mailboxes, aliases, alias_domains: dict[str, str], catch_all: set[str],
                      rng: random.Random, count: int) -> dict[str, list[str]]:
    """Keys per class of recipient. alias_domains (alias domain -> target) and catch_all
    (domains with an "@domain" alias) are read from the loaded database, not assumed."""
    hosted = sorted({m.rpartition("@")[2] for m in mailboxes})
    plain = [d for d in hosted if d not in catch_all]
    via = {target: alias for alias, target in alias_domains.items()}
    in_aliased = [m for m in mailboxes[: 50 * len(hosted)] if m.rpartition("@")[2] in via]

    def through_alias_domain(address: str) -> str:
        local, _, domain = address.rpartition("@")
        return f"{local}@{via[domain]}"

    classes = {
        "mailbox": [rng.choice(mailboxes) for _ in range(count)],
        "alias": [rng.choice(aliases) for _ in range(count)],
        "mailbox via an alias domain": [through_alias_domain(rng.choice(in_aliased)) for _ in range(count)],
        "unknown user, no catch-all": [f"nobody{i}@{rng.choice(plain)}" for i in range(count)],
    }
    if catch_all:
        classes["unknown user, catch-all"] = [f"nobody{i}@{rng.choice(sorted(catch_all))}" for i in range(count)]
    return classes


def compare(admin_dsn: str, reader_dsn: str, reader_pw: str, ours: tuple[list[str], list[str]],
            mailboxes, aliases, domains, rng: random.Random, count: int = 300) -> dict:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS pfa CASCADE")
        conn.execute(PFA_SCHEMA)
        alias_domains = dict(conn.execute("SELECT domain, alias_of FROM public.transports"
                                          " WHERE alias_of IS NOT NULL").fetchall())
        catch_all = {a for (a,) in conn.execute("SELECT DISTINCT substr(alias, 2) FROM public.aliases"
                                                " WHERE left(alias, 1) = '@'").fetchall()}
    hosted = set(domains)
    out = {}
    try:
        with psycopg.connect(reader_dsn, password=reader_pw, autocommit=True) as conn:
            designs = {"mailbook": Replay(conn, *ours, hosted), "postfixadmin": Replay(conn, *POSTFIXADMIN, hosted)}
            for cls, keys in recipient_classes(mailboxes, aliases, alias_domains, catch_all, rng, count).items():
                for replay in designs.values():  # warm up
                    for key in keys[:20]:
                        replay.recipient(key)
                figures = {name: {"us": [], "trips": [], "ok": 0} for name in designs}
                for key in keys:  # one to one, so both see the same conditions
                    for name, replay in designs.items():
                        t0 = time.perf_counter_ns()
                        ok, trips = replay.recipient(key)
                        figures[name]["us"].append((time.perf_counter_ns() - t0) / 1000)
                        figures[name]["trips"].append(trips)
                        figures[name]["ok"] += ok
                out[cls] = {name: {"p50_us": round(statistics.median(f["us"]), 1),
                                   "trips": round(statistics.mean(f["trips"]), 2),
                                   "accepted": round(f["ok"] / len(keys), 2)} for name, f in figures.items()}
                out[cls]["ratio"] = round(out[cls]["postfixadmin"]["p50_us"] / out[cls]["mailbook"]["p50_us"], 2)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("DROP SCHEMA pfa CASCADE")
    return out

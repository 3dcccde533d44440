"""Compiled maps: Postfix lmdb: tables written from one snapshot of the mail database
(`mailbook maps compile`), and their proof against the pgsql: maps (`mailbook maps verify`).

The keys come from SQL (compiled_map_rows() in sql/api/75_compiled_maps.sql, whose header
says how each rule of the pgsql: maps becomes keys); this module writes them with
Postfix's own postmap and compares answers through Postfix's own postmap -q.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from mailbook import Failure
from mailbook.daemons import postmap_path


@dataclass(frozen=True)
class CompiledMap:
    name: str        # lmdb:DEST/name
    parameter: str   # the main.cf parameter that uses it
    pgsql: str | None  # the postfix-maps/*.cf whose answers it must give (None: derived)


MAPS = (
    CompiledMap("domains", "virtual_mailbox_domains", "domains.cf"),
    CompiledMap("mailboxes", "virtual_mailbox_maps", "mailboxes.cf"),
    CompiledMap("virtual", "virtual_alias_maps", "virtual.cf"),
    CompiledMap("transport", "transport_maps", "transport.cf"),
    CompiledMap("relay-domains", "relay_domains", "relay-domains.cf"),
    CompiledMap("sender-login", "smtpd_sender_login_maps", "sender-login.cf"),
    # smtpd accepts any address virtual_alias_maps finds, and a catch-all's self-keys are
    # found: these addresses are refused as the SQL maps refuse them (see 75_compiled_maps.sql)
    CompiledMap("refused-recipients", "smtpd_recipient_restrictions", None),
)
STATE_FILE = "compiled.json"


def main_cf_settings(dest: Path) -> list[tuple[str, str]]:
    """The main.cf lines that make Postfix use the compiled tables in dest (no proxy:, which
    only pools database connections; a local file needs none)."""
    out = []
    for m in MAPS:
        table = f"lmdb:{dest}/{m.name}"
        out.append((m.parameter, f"check_recipient_access {table}" if m.name == "refused-recipients" else table))
    return out


def _postmap(config_dir: Path | None) -> list[str]:
    return [postmap_path()] + (["-c", str(config_dir)] if config_dir else [])


def snapshot(conn: psycopg.Connection) -> tuple[dict[str, list[tuple[str, str]]], dict]:
    """Every compiled map's rows from one REPEATABLE READ READ ONLY transaction, and what
    identifies that snapshot (its time, its xmin, and the snapshot itself, from which
    `mailbook maps follow` goes on: pg_current_snapshot() as text)."""
    conn.autocommit = False
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    try:
        with conn.transaction():
            taken = conn.execute("SELECT now(), pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint,"
                                 " pg_catalog.pg_current_snapshot()::text").fetchone()
            rows = {m.name: conn.execute("SELECT key, value FROM public.compiled_map_rows(%s) ORDER BY key",
                                         (m.name,)).fetchall() for m in MAPS}
    finally:
        conn.autocommit = True
    return rows, {"snapshot_time": taken[0].isoformat(), "snapshot_xmin": taken[1], "snapshot": taken[2]}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(dest: Path, name: str, rows: list[tuple[str, str]], config_dir: Path | None) -> None:
    """dest/name (postmap's input, kept for reading and diffs) and dest/name.lmdb, each
    built under a temporary name in dest and renamed over the old one: a reader, or a crash
    at any point, sees the previous table or the new one, never half of one."""
    tmp = dest / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        with open(tmp, "w") as f:
            for key, value in rows:
                if not key or any(c.isspace() for c in key) or "\n" in value:
                    raise Failure(f"map {name}: key {key!r} cannot be written as a Postfix table key")
                f.write(f"{key}\t{value}\n")
            f.flush()
            os.fsync(f.fileno())
        r = subprocess.run([*_postmap(config_dir), f"lmdb:{tmp}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"postmap could not build {name}.lmdb: {r.stderr.strip() or r.returncode}")
        built = Path(f"{tmp}.lmdb")
        for p in (tmp, built):
            os.chmod(p, 0o644)  # no secrets: Postfix's daemons must read them, as any map
        _fsync(built)
        os.rename(built, dest / f"{name}.lmdb")  # the table Postfix opens, first
        os.rename(tmp, dest / name)
        _fsync(dest)
    finally:
        for p in (tmp, Path(f"{tmp}.lmdb")):
            p.unlink(missing_ok=True)


def compile_rows(conn: psycopg.Connection, dest: Path, config_dir: Path | None = None
                 ) -> tuple[dict[str, list[tuple[str, str]]], dict]:
    """Write every compiled map into dest from one snapshot, then dest/compiled.json;
    the rows written and the state recorded."""
    dest.mkdir(parents=True, exist_ok=True)
    rows, state = snapshot(conn)
    for name, table in rows.items():
        write_table(dest, name, table, config_dir)
    state.update({"compiled_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "keys": {name: len(table) for name, table in rows.items()}})
    write_state(dest, state)
    return rows, state


def compile_maps(conn: psycopg.Connection, dest: Path, config_dir: Path | None = None) -> dict[str, int]:
    """Write every compiled map into dest from one snapshot; {map name: key count}."""
    return compile_rows(conn, dest, config_dir)[1]["keys"]


def read_state(dest: Path) -> dict | None:
    """dest/compiled.json, or None if there is none (or it cannot be read)."""
    try:
        return json.loads((dest / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_state(dest: Path, state: dict) -> None:
    """dest/compiled.json, replaced atomically and durably (written only after the tables
    it describes)."""
    tmp = dest / f".{STATE_FILE}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(json.dumps(state, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, dest / STATE_FILE)
    _fsync(dest)


# -- verify -------------------------------------------------------------------------------

def postmap_batch(table: str, keys: list[str], config_dir: Path | None) -> dict[str, str]:
    """{key: answer} for the keys `postmap -q -` finds in table (e.g. lmdb:/x/virtual),
    all keys sent on stdin in one run. A failing table (database down, file missing) is a
    Failure, never "not found"."""
    r = subprocess.run([*_postmap(config_dir), "-q", "-", table], input="".join(k + "\n" for k in keys),
                       capture_output=True, text=True)
    if r.returncode not in (0, 1) or "fatal" in r.stderr or "warning" in r.stderr:
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        raise Failure(f"postmap -q - {table} failed: {lines[-1] if lines else r.returncode}")
    out = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition("\t")
        out[key] = value
    return out


def dump(table: str, config_dir: Path | None) -> dict[str, str]:
    """Every key of an indexed table, through `postmap -s`."""
    r = subprocess.run([*_postmap(config_dir), "-s", table], capture_output=True, text=True)
    if r.returncode != 0:
        raise Failure(f"postmap -s {table} failed: {r.stderr.strip() or r.returncode}")
    return dict(line.split("\t", 1) for line in r.stdout.splitlines() if "\t" in line)


def _answers(value: str | None) -> frozenset[str] | None:
    """A map's answer as a set of results: pgsql: joins several rows with "," in the
    order the query gives them, and may repeat one; order and repeats mean nothing to
    Postfix here (virtual_alias_maps removes duplicate recipients)."""
    if value is None:
        return None
    return frozenset(v.strip() for v in value.split(",") if v.strip())


def _domain(key: str) -> str:
    return key.rpartition("@")[2]


@dataclass
class Difference:
    map: str
    key: str
    compiled: str | None
    sql: str | None

    def __str__(self) -> str:
        show = lambda v: "(not found)" if v is None else v  # noqa: E731
        return f"{self.map} {self.key}: compiled {show(self.compiled)}, SQL {show(self.sql)}"


def verify_keys(dest: Path, maps_dir: Path, config_dir: Path | None, sample: int = 3,
                extra_keys: list[str] = ()) -> tuple[int, list[Difference]]:
    """Compare what Postfix gets from the compiled tables with what it gets from the
    pgsql: maps, for every compiled key, plus `sample` unknown local parts in each domain
    and unknown domains, plus extra_keys. Postfix's own lookup order is applied on the
    compiled side (user@domain then @domain for virtual_alias_maps, address then domain
    for transport_maps), since that is what the keys are built for. Returns the number of
    keys compared and the differences."""
    for m in MAPS:
        if not (dest / f"{m.name}.lmdb").exists():
            raise Failure(f"{dest}/{m.name}.lmdb does not exist; run `mailbook maps compile --dest {dest}` first")
        if m.pgsql and not (maps_dir / m.pgsql).exists():
            raise Failure(f"{maps_dir}/{m.pgsql} does not exist; run `mailbook maps install --dest {maps_dir}` first")
    compiled = {m.name: dump(f"lmdb:{dest}/{m.name}", config_dir) for m in MAPS}
    domains = set()
    addresses = set()
    for table in compiled.values():
        for key in table:
            if "@" in key:
                if not key.startswith("@"):
                    addresses.add(key)
                domains.add(_domain(key))
            else:
                domains.add(key)
    for key in extra_keys:
        (addresses if "@" in key else domains).add(key.lower())
        if "@" in key:
            domains.add(_domain(key.lower()))
    domains.add(f"unknown-{secrets.token_hex(3)}.example")
    for d in sorted(domains):
        for _ in range(sample):
            addresses.add(f"nobody-{secrets.token_hex(4)}@{d}")
    addresses_l, domains_l = sorted(addresses), sorted(domains)
    lookup_keys = addresses_l + [f"@{d}" for d in domains_l] + domains_l

    lm = {m.name: postmap_batch(f"lmdb:{dest}/{m.name}", lookup_keys, config_dir) for m in MAPS}
    sq = {m.name: postmap_batch(f"pgsql:{maps_dir}/{m.pgsql}", addresses_l + domains_l, config_dir)
          for m in MAPS if m.pgsql}
    diffs: list[Difference] = []

    def compare(map_name: str, key: str, compiled_value: str | None, sql_value: str | None):
        if _answers(compiled_value) != _answers(sql_value):
            diffs.append(Difference(map_name, key, compiled_value, sql_value))

    for d in domains_l:  # looked up by domain
        for name in ("domains", "relay-domains"):
            compare(name, d, lm[name].get(d), sq[name].get(d))
    for a in addresses_l:
        local, d = a.rsplit("@", 1)
        compare("mailboxes", a, lm["mailboxes"].get(a), sq["mailboxes"].get(a))
        compare("sender-login", a, lm["sender-login"].get(a), sq["sender-login"].get(a))
        compare("transport", a, lm["transport"].get(a, lm["transport"].get(d)), sq["transport"].get(a))
        # virtual_alias_maps: the address, else @domain; "@other" means local@other; an
        # address found as itself is kept as it is, which is what "not found" does
        v = lm["virtual"].get(a)
        if v is None and f"@{d}" in lm["virtual"]:
            v = lm["virtual"][f"@{d}"]
            if v.startswith("@"):
                v = local + v
        found = v is not None
        # an address found as itself is kept as it is, on either side: a compiled self-key,
        # or an alias of the address to itself only (what the property test once made)
        sql_v = sq["virtual"].get(a)
        if v == a:
            v = None
        if sql_v == a:
            sql_v = None
        compare("virtual", a, v, sql_v)
        # RCPT: smtpd accepts what virtual_alias_maps finds or a mailbox, unless refused
        sql_accepts = a in sq["virtual"] or a in sq["mailboxes"]
        compiled_accepts = (found or a in lm["mailboxes"]) and a not in lm["refused-recipients"]
        if sql_accepts != compiled_accepts:
            diffs.append(Difference("refused-recipients", a,
                                    "accepted at RCPT" if compiled_accepts else "refused at RCPT",
                                    "accepted at RCPT" if sql_accepts else "refused at RCPT"))
    return len(addresses_l) + len(domains_l), diffs


def postconf_settings(dest: Path, delivery: str = "lmtp") -> list[tuple[str, str]]:
    """main.cf.snippet's settings with each pgsql: map replaced by its compiled table in
    dest, and the refusals of refused-recipients put first in smtpd_recipient_restrictions
    (before reject_unlisted_recipient and the quota-status check, which stay)."""
    from mailbook.daemons import snippet_settings
    compiled = dict(main_cf_settings(dest))
    out = []
    for name, value in snippet_settings(dest, delivery):
        if name == "smtpd_recipient_restrictions":
            value = f"{compiled.pop(name)}, {value}"
        out.append((name, compiled.pop(name, value)))
    return out + list(compiled.items())

"""Compiled maps: Postfix lmdb: tables written from one snapshot of the mail database
(`mailbook maps compile`), and their proof against the pgsql: maps (`mailbook maps verify`).

The keys come from SQL (compiled_map_rows() in sql/api/75_compiled_maps.sql, whose header
says how each rule of the pgsql: maps becomes keys); this module writes them with
Postfix's own postmap and compares answers through Postfix's own postmap -q.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import secrets
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from mailbook import Failure
from mailbook.database.snapshots import read_snapshot
from mailbook.files import write_atomically
from mailbook.postfix.postconf import postmap_command, postmap_stdin, snippet_settings


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
# The tables and their text sources list every address, maildir and send-as grant: as
# the pgsql: map files, readable by Postfix's daemons (group postfix) and nobody else.
# compiled.json only names a snapshot and counts keys.
TABLE_MODE, TABLE_GROUP, STATE_MODE = 0o640, "postfix", 0o644
USER = "mailbook-maps"  # who runs `maps follow` (postfix-maps/mailbook-maps-follow.service)


def key_problem(key: str, value: str | None = None) -> str | None:
    """Why postmap's input format cannot carry key (and value) as they are, or None. A
    line whose first character is "#" is a comment, leading whitespace continues the line
    before, the key ends at the first whitespace; postmap says nothing about any of it.
    (address_error() refuses such addresses since 0201: only older rows can get here.)"""
    if not key:
        return "is empty"
    if key[0] == "#":
        return 'starts with "#", which postmap reads as a comment line'
    if any(c.isspace() or not c.isprintable() for c in key):
        return "contains whitespace or a control character"
    if value is not None and (not value.strip() or value != value.strip()
                              or any(not c.isprintable() for c in value)):
        return f"has the value {value!r}, which postmap would not store as it is"
    return None


def check_rows(name: str, rows) -> None:
    """Refuse, before anything is written, a table with a key postmap would drop or change."""
    for key, value in (rows.items() if isinstance(rows, dict) else rows):
        problem = key_problem(key, value)
        if problem:
            raise Failure(f"map {name}: key {key!r} {problem}; nothing written (a row older than today's"
                          " rules: `mailbook doctor` lists them under \"stored addresses\")")


def check_tables(tables: dict) -> None:
    """check_rows() for every table ({map name: rows}) before the first is written: a
    compile, or a batch of `maps follow`, is applied whole or not at all."""
    for name, rows in tables.items():
        check_rows(name, rows)


def table_gid() -> int:
    try:
        return grp.getgrnam(TABLE_GROUP).gr_gid
    except KeyError:
        raise Failure(f"there is no group {TABLE_GROUP} to give the compiled tables to: install Postfix first") from None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def prepare_dest(dest: Path, command: str) -> None:
    """Create dest (0750, group postfix) if missing, and refuse one that another user owns or
    may write: whoever may rename entries there could plant a symlink or a file at a name
    this process then writes or chmods. (Root compiling into mailbook-maps' directory is
    refused too, rather than dropping privileges: one clear line, and the tables stay the
    follower's own, which it must go on updating in place.)"""
    if not dest.exists():
        dest.mkdir(mode=0o750, parents=True)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            _own(fd, dest, 0o750)
        finally:
            os.close(fd)
    st = dest.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise Failure(f"{dest} is not a directory")
    if st.st_uid != os.geteuid():
        owner = _user(st.st_uid)
        raise Failure(f"{dest} belongs to {owner}, not to {_user(os.geteuid())}: run this as {owner},"
                      f" e.g. runuser -u {owner} -- mailbook maps {command} --dest {dest} ...")
    if st.st_mode & 0o022:
        raise Failure(f"{dest} may be written by others than {_user(st.st_uid)} (mode"
                      f" {stat.S_IMODE(st.st_mode):04o}): chmod go-w {dest}")


def _own(fd: int, path: Path, mode: int = TABLE_MODE) -> None:
    """Group postfix and mode on an open descriptor (never by path: a name can be swapped
    for a symlink between two calls)."""
    gid = table_gid()
    try:
        if os.fstat(fd).st_gid != gid:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
    except PermissionError:
        raise Failure(f"cannot give {path} to group {TABLE_GROUP}: run as root, add {_user(os.geteuid())} to"
                      f" group {TABLE_GROUP}, or make {path.parent} setgid {TABLE_GROUP}"
                      f" (chgrp {TABLE_GROUP} DIR; chmod 2750 DIR)") from None


def main_cf_settings(dest: Path) -> list[tuple[str, str]]:
    """The main.cf lines that make Postfix use the compiled tables in dest (no proxy:, which
    only pools database connections; a local file needs none)."""
    out = []
    for m in MAPS:
        table = f"lmdb:{dest}/{m.name}"
        out.append((m.parameter, f"check_recipient_access {table}" if m.name == "refused-recipients" else table))
    return out


def snapshot(conn: psycopg.Connection) -> tuple[dict[str, list[tuple[str, str]]], dict]:
    """Every compiled map's rows from one REPEATABLE READ READ ONLY transaction, and what
    identifies that snapshot (its time, its xmin, and the snapshot itself, from which
    `mailbook maps follow` goes on: pg_current_snapshot() as text)."""
    with read_snapshot(conn):
        taken = conn.execute("SELECT now(), pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text::bigint,"
                             " pg_catalog.pg_current_snapshot()::text").fetchone()
        rows = {m.name: conn.execute("SELECT key, value FROM public.compiled_map_rows(%s) ORDER BY key",
                                     (m.name,)).fetchall() for m in MAPS}
    return rows, {"snapshot_time": taken[0].isoformat(), "snapshot_xmin": taken[1], "snapshot": taken[2]}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_table(dest: Path, name: str, rows: list[tuple[str, str]], config_dir: Path | None) -> None:
    """dest/name (postmap's input, kept for reading and diffs) and dest/name.lmdb, 0640
    group postfix, each built in a private directory (mkdtemp: 0700, a fresh name) and
    renamed over the old one: a reader, or a crash at any point, sees the previous table
    or the new one, never half of one; and nothing is opened, written or chmodded through
    a name someone else could have planted."""
    check_rows(name, rows)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest))
    src, built = work / name, work / f"{name}.lmdb"
    try:
        try:
            write_atomically(src, "".join(f"{key}\t{value}\n" for key, value in rows), TABLE_MODE, table_gid())
        except PermissionError:
            raise Failure(f"cannot give {dest / name} to group {TABLE_GROUP}: run as root, add"
                          f" {_user(os.geteuid())} to group {TABLE_GROUP}, or make {dest} setgid"
                          f" {TABLE_GROUP} (chgrp {TABLE_GROUP} {dest}; chmod 2750 {dest})") from None
        r = subprocess.run([*postmap_command(config_dir), f"lmdb:{src}"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure(f"postmap could not build {name}.lmdb: {r.stderr.strip() or r.returncode}")
        try:
            fd = os.open(built, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:  # ELOOP: a symlink where postmap's table should be
            raise Failure(f"{built} is not the table postmap wrote ({exc.strerror}); nothing installed") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Failure(f"postmap left no table at {built}")
            _own(fd, dest / f"{name}.lmdb")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(built, dest / f"{name}.lmdb")  # the table Postfix opens, first
        os.rename(src, dest / name)
        _fsync(dest)
    finally:
        for p in (src, built):
            p.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # (a failure above is what the caller must see)
            os.rmdir(work)


def own_tables(dest: Path) -> bool:
    """Give the tables in dest (and their sources) mode 0640 and group postfix, through
    descriptors opened O_NOFOLLOW; False if one is missing, is not a plain file, or is
    not this user's (root left it there, say): then only a full compile, which renames
    new files over them, makes them right. For `maps follow` at start: tables written by
    a release that made them 0644 are closed at once."""
    for m in MAPS:
        for p in (dest / f"{m.name}.lmdb", dest / m.name):
            try:
                fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                return False
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                    return False
                _own(fd, p)
            finally:
                os.close(fd)
    return True


def compile_rows(conn: psycopg.Connection, dest: Path, config_dir: Path | None = None
                 ) -> tuple[dict[str, list[tuple[str, str]]], dict]:
    """Write every compiled map into dest from one snapshot, then dest/compiled.json;
    the rows written and the state recorded. Every table's keys are checked before the
    first is written."""
    prepare_dest(dest, "compile")
    rows, state = snapshot(conn)
    check_tables(rows)
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
    it describes), through write_atomically: a fresh name, never a planted one."""
    write_atomically(dest / STATE_FILE, json.dumps(state, indent=2) + "\n", STATE_MODE)


# -- verify -------------------------------------------------------------------------------

def postmap_batch(table: str, keys: list[str], config_dir: Path | None) -> dict[str, str]:
    """{key: answer} for the keys `postmap -q -` finds in table (e.g. lmdb:/x/virtual),
    all keys sent on stdin in one run. A failing table (database down, file missing) is a
    Failure, never "not found"."""
    out = {}
    for line in postmap_stdin(["-q", "-"], table, "".join(k + "\n" for k in keys), config_dir).splitlines():
        key, _, value = line.partition("\t")
        out[key] = value
    return out


def dump(table: str, config_dir: Path | None) -> dict[str, str]:
    """Every key of an indexed table, through `postmap -s`."""
    r = subprocess.run([*postmap_command(config_dir), "-s", table], capture_output=True, text=True)
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
        show = lambda v: "(not found)" if v is None else v
        return f"{self.map} {self.key}: compiled {show(self.compiled)}, SQL {show(self.sql)}"


def check_files(dest: Path, maps_dir: Path) -> None:
    """What `maps verify` compares must be there: every compiled table, every pgsql: map."""
    for m in MAPS:
        if not (dest / f"{m.name}.lmdb").exists():
            raise Failure(f"{dest}/{m.name}.lmdb does not exist; run `mailbook maps compile --dest {dest}` first")
        if m.pgsql and not (maps_dir / m.pgsql).exists():
            raise Failure(f"{maps_dir}/{m.pgsql} does not exist; run `mailbook maps install --dest {maps_dir}` first")


def verify_keys(dest: Path, maps_dir: Path, config_dir: Path | None, db_rows: dict[str, list[tuple[str, str]]],
                sample: int = 3, extra_keys: list[str] = ()) -> tuple[int, list[Difference]]:
    """Compare the compiled tables with the database and with the pgsql: maps. First
    every key the database has now (db_rows: snapshot()'s rows, compiled_map_rows()) must
    be in the compiled table with the same answer, and the table must have no other key.
    Then what Postfix gets from the compiled tables is compared with what it gets from
    the pgsql: maps, through `postmap -q -`, for every key of both, plus `sample` unknown
    local parts in each domain and unknown domains, plus extra_keys. Postfix's own lookup
    order is applied on the compiled side (user@domain then @domain for
    virtual_alias_maps, address then domain for transport_maps), since that is what the
    keys are built for. Returns the number of keys compared and the differences."""
    check_files(dest, maps_dir)
    compiled = {m.name: dump(f"lmdb:{dest}/{m.name}", config_dir) for m in MAPS}
    diffs: list[Difference] = []
    seen: set[tuple[str, str]] = set()

    def differ(map_name: str, key: str, compiled_value: str | None, sql_value: str | None) -> None:
        if (map_name, key) not in seen:
            seen.add((map_name, key))
            diffs.append(Difference(map_name, key, compiled_value, sql_value))

    # the database's keys, each of them, against the tables' keys, each of them
    for m in MAPS:
        db, table = dict(db_rows.get(m.name, ())), compiled[m.name]
        for key in sorted(set(db) | set(table)):
            if _answers(table.get(key)) != _answers(db.get(key)):
                differ(m.name, key, table.get(key), db.get(key))
    domains = set()
    addresses = set()
    keys = {k for table in compiled.values() for k in table} | {k for rows in db_rows.values() for k, _ in rows}
    for key in keys:
        if key_problem(key):  # reported above; not sent to `postmap -q -` (a key a line)
            continue
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

    def compare(map_name: str, key: str, compiled_value: str | None, sql_value: str | None):
        if _answers(compiled_value) != _answers(sql_value):
            differ(map_name, key, compiled_value, sql_value)

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
            differ("refused-recipients", a, "accepted at RCPT" if compiled_accepts else "refused at RCPT",
                   "accepted at RCPT" if sql_accepts else "refused at RCPT")
    return len(addresses_l) + len(domains_l) + sum(map(len, db_rows.values())), diffs


def postconf_settings(dest: Path, delivery: str = "lmtp") -> list[tuple[str, str]]:
    """main.cf.snippet's settings with each pgsql: map replaced by its compiled table in
    dest, and the refusals of refused-recipients put first in smtpd_recipient_restrictions
    (before reject_unlisted_recipient and the quota-status check, which stay)."""
    compiled = dict(main_cf_settings(dest))
    out = []
    for name, value in snippet_settings(dest, delivery):
        if name == "smtpd_recipient_restrictions":
            value = f"{compiled.pop(name)}, {value}"
        out.append((name, compiled.pop(name, value)))
    return out + list(compiled.items())

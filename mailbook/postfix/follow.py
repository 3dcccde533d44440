"""`mailbook maps follow`: keep the compiled lmdb: tables of `mailbook maps compile` current.

Triggers record, for every committed change of users, aliases, transports or send_as,
the addresses whose keys it may change, or where a row decides a whole domain's keys
(domains, catch-alls) that domain (migration 0112_baseline_map_changes, table map_changes), and notify
channel mailbook_maps. The follower writes nothing to the database (it connects as
mailreader): it remembers the last snapshot it applied (S_prev, in DEST/compiled.json)
and, for each batch, in one REPEATABLE READ READ ONLY transaction takes a snapshot S,
asks which addresses and domains transactions seen by S and not by S_prev changed
(compiled_map_changes), and reads those keys of every map in the same snapshot
(compiled_map_rows(map, domains, addresses)). It compares them with its copy of the tables (read
from the tables themselves at start) and applies the difference with `postmap -r -i`
and `postmap -d -`: each key is one LMDB transaction, and Postfix's daemons see it on
their next lookup (an lmdb: table is opened multi-writer, so an update in place restarts
nothing). Only then is S written as S_prev. A crash in between repeats the batch, which
changes nothing the second time.

A batch with many changes, a TRUNCATE, a missing or unusable compiled.json, or an S_prev
older than what prune_map_changes() kept, compiles every table in full instead (each
built aside and renamed into place; Postfix's daemons then restart after their current
client, as for `maps compile`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import psycopg

from mailbook.database import listen
from mailbook.postfix import compiled
from mailbook.postfix.compiled import MAPS
from mailbook.postfix.postconf import postmap_stdin

CHANNEL = "mailbook_maps"
# a batch that changes more keys than this rebuilds the tables instead: each key put
# through postmap -i is one LMDB commit (an fsync)
FULL_REBUILD_KEYS = 5000
# compiled.json is rewritten at least this often while nothing changes, so that the
# snapshot it names stays recent (doctor's lag query starts at its xmin)
IDLE_STATE_WRITE = 60.0


def key_domain(key: str) -> str:
    """The domain a key belongs to: the part after "@", or the key itself (a domain)."""
    return key.rpartition("@")[2]


Tables = dict[str, dict[str, dict[str, str]]]  # map -> domain -> key -> value


def index(rows: dict[str, list[tuple[str, str]] | dict[str, str]]) -> Tables:
    tables: Tables = {}
    for name, table in rows.items():
        by_domain: dict[str, dict[str, str]] = defaultdict(dict)
        for key, value in (table.items() if isinstance(table, dict) else table):
            by_domain[key_domain(key)][key] = value
        tables[name] = dict(by_domain)
    return tables


class Follower:
    def __init__(self, dsn: str | None, dest: Path, config_dir: Path | None = None, poll: float = 5.0,
                 say: Callable[[str], None] = lambda line: print(line, flush=True)):
        self.dsn, self.dest, self.config_dir, self.poll, self.say = dsn, dest, config_dir, poll, say
        self.tables: Tables | None = None
        self.state: dict | None = None
        self.state_written = 0.0

    # -- state -----------------------------------------------------------------------------

    def load(self) -> bool:
        """The tables and S_prev from DEST, if compiled.json names a snapshot and every
        table is there; False if a full compile is needed."""
        state = compiled.read_state(self.dest)
        if not state or "snapshot" not in state:
            return False
        if not compiled.own_tables(self.dest):  # missing, or not ours: compile anew
            return False
        self.tables = index({m.name: compiled.dump(f"lmdb:{self.dest}/{m.name}", self.config_dir) for m in MAPS})
        self.state = state
        return True

    def full(self, conn: psycopg.Connection, why: str) -> None:
        rows, state = compiled.compile_rows(conn, self.dest, self.config_dir)
        self.tables, self.state, self.state_written = index(rows), state, time.monotonic()
        self.say(f"compiled every map in full ({why}): "
                 + ", ".join(f"{n} {c}" for n, c in state["keys"].items()))

    def _save(self, snapshot: str) -> None:
        self.state.update({"snapshot": snapshot, "snapshot_xmin": int(snapshot.split(":")[0]),
                           "followed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           "keys": {n: sum(map(len, t.values())) for n, t in self.tables.items()}})
        compiled.write_state(self.dest, self.state)
        self.state_written = time.monotonic()

    # -- one batch -------------------------------------------------------------------------

    def batch(self, conn: psycopg.Connection) -> int:
        """Apply what committed since S_prev; the number of keys changed."""
        if self.tables is None and not self.load():
            self.full(conn, f"no usable {compiled.STATE_FILE} in {self.dest}, or tables not this user's")
            return 0
        try:
            with compiled.read_snapshot(conn):
                snap = conn.execute("SELECT pg_catalog.pg_current_snapshot()::text").fetchone()[0]
                changes = conn.execute("SELECT domain, address FROM public.compiled_map_changes(%s::pg_snapshot)",
                                       (self.state["snapshot"],)).fetchall()
                if not changes:
                    rows = None
                else:
                    if any(d is None for d, _ in changes):
                        domains, addresses = None, None
                    else:
                        domains = sorted({d for d, a in changes if a is None})
                        # an address of a domain recomputed whole comes with it
                        addresses = sorted({a for d, a in changes if a is not None and d not in domains})
                    rows = {m.name: conn.execute("SELECT key, value FROM public.compiled_map_rows(%s, %s, %s)",
                                                 (m.name, domains, addresses)).fetchall() for m in MAPS}
        except psycopg.errors.ObjectNotInPrerequisiteState:  # (read_snapshot has put autocommit back)
            self.full(conn, "changes since the last snapshot were pruned")
            return 0
        if rows is None:
            if time.monotonic() - self.state_written > IDLE_STATE_WRITE:
                self._save(snap)
            return 0
        changed = self.apply(rows, None if domains is None else set(domains), set(addresses or ()))
        self._save(snap)
        return changed

    def apply(self, rows: dict[str, list[tuple[str, str]]], domains: set[str] | None,
              addresses: set[str] = frozenset()) -> int:
        """Put the keys recomputed (every key of domains, the keys equal to addresses;
        domains None: every key) where they differ from the tables."""
        new = index(rows)
        upserts: dict[str, dict[str, str]] = {}
        deletes: dict[str, list[str]] = {}
        for m in MAPS:
            old_t, new_t = self.tables.get(m.name, {}), new.get(m.name, {})
            up, gone = {}, []
            for d in (set(old_t) | set(new_t)) if domains is None else domains:
                old_d, new_d = old_t.get(d, {}), new_t.get(d, {})
                up.update({k: v for k, v in new_d.items() if old_d.get(k) != v})
                gone += [k for k in old_d if k not in new_d]
            for k in addresses:
                d = key_domain(k)
                old_v, new_v = old_t.get(d, {}).get(k), new_t.get(d, {}).get(k)
                if new_v is not None and new_v != old_v:
                    up[k] = new_v
                elif new_v is None and old_v is not None:
                    gone.append(k)
            upserts[m.name], deletes[m.name] = up, gone
        compiled.check_tables(upserts)  # a key postmap -i would drop: nothing applied, loudly
        count = sum(map(len, upserts.values())) + sum(map(len, deletes.values()))
        if domains is None or count > FULL_REBUILD_KEYS:
            for m in MAPS:
                if upserts[m.name] or deletes[m.name]:
                    table = self.tables.setdefault(m.name, {}) if domains is not None else new.get(m.name, {})
                    if domains is not None:
                        self._update(table, new.get(m.name, {}), domains, upserts[m.name], deletes[m.name])
                    compiled.write_table(self.dest, m.name, sorted(
                        (k, v) for t in table.values() for k, v in t.items()), self.config_dir)
                    self.tables[m.name] = table
            if count:
                self.say(f"rebuilt the changed tables ({count} keys changed)")
            return count
        self._put_in_order(upserts, deletes)
        for m in MAPS:
            self._update(self.tables.setdefault(m.name, {}), new.get(m.name, {}), domains,
                         upserts[m.name], deletes[m.name])
        return count

    @staticmethod
    def _update(table: dict[str, dict[str, str]], new: dict[str, dict[str, str]], domains: set[str],
                upserts: dict[str, str], deletes: list[str]) -> None:
        """The in-memory copy of one table after a batch: domains replaced whole, then
        the single keys."""
        for d in domains:
            if d in new:
                table[d] = dict(new[d])
            else:
                table.pop(d, None)
        for k, v in upserts.items():
            table.setdefault(key_domain(k), {})[k] = v
        for k in deletes:
            keys = table.get(key_domain(k))
            if keys is not None:
                keys.pop(k, None)
                if not keys:
                    del table[key_domain(k)]

    def _put_in_order(self, upserts: dict[str, dict[str, str]], deletes: dict[str, list[str]]) -> None:
        """Each key is its own LMDB transaction, so a lookup during the batch may see part
        of it. The order keeps every such moment from accepting or redirecting mail that
        neither the old nor the new state would: a refusal is added first and removed
        last; a catch-all ("@domain") is removed before, and added after, the
        self-keys that keep it off mailboxes and aliases; domains arrive before their
        addresses and leave after them."""
        at = lambda keys: {k: v for k, v in keys.items() if k.startswith("@")}
        not_at = lambda keys: {k: v for k, v in keys.items() if not k.startswith("@")}
        virtual_up, virtual_gone = upserts["virtual"], deletes["virtual"]
        self._postmap_put("refused-recipients", upserts["refused-recipients"])
        self._postmap_delete("virtual", [k for k in virtual_gone if k.startswith("@")])
        for name in ("domains", "relay-domains", "transport", "mailboxes", "sender-login"):
            self._postmap_put(name, upserts[name])
        self._postmap_put("virtual", not_at(virtual_up))
        self._postmap_delete("virtual", [k for k in virtual_gone if not k.startswith("@")])
        for name in ("sender-login", "mailboxes", "transport", "relay-domains", "domains"):
            self._postmap_delete(name, deletes[name])
        self._postmap_put("virtual", at(virtual_up))
        self._postmap_delete("refused-recipients", deletes["refused-recipients"])

    def _postmap(self, args: list[str], name: str, text: str) -> None:
        # postmap -d exits 1 when no key was there (already deleted: a repeated batch)
        postmap_stdin(args, f"lmdb:{self.dest}/{name}", text, self.config_dir)

    def _postmap_put(self, name: str, keys: dict[str, str]) -> None:
        if keys:
            compiled.check_rows(name, keys)
            self._postmap(["-r", "-i"], name, "".join(f"{k}\t{v}\n" for k, v in sorted(keys.items())))

    def _postmap_delete(self, name: str, keys: list[str]) -> None:
        if keys:
            self._postmap(["-d", "-"], name, "".join(f"{k}\n" for k in sorted(keys)))

    # -- the loop --------------------------------------------------------------------------

    def run(self, once: bool = False) -> None:
        """Catch up, then wait for a notification (or the poll interval) and catch up
        again, for ever; across a lost connection, retry with backoff. once: catch up
        and return."""
        listen.follow(self.dsn, CHANNEL, self._batch, poll=self.poll, once=once, say=self.say,
                      while_away="Postfix goes on answering from the tables")

    def _batch(self, conn: psycopg.Connection) -> None:
        started = time.monotonic()
        changed = self.batch(conn)
        if changed:
            self.say(f"applied {changed} key change(s) up to snapshot {self.state['snapshot']}"
                     f" in {time.monotonic() - started:.3f} s")


def run(dsn: str | None, dest: Path, config_dir: Path | None, poll: float, once: bool) -> None:
    def follow() -> None:
        compiled.prepare_dest(dest, "follow")
        Follower(dsn, dest, config_dir, poll).run(once)
    listen.until_stopped(follow)

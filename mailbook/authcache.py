"""`mailbook dovecot follow`: flush from Dovecot's auth cache the users a change made stale.

`mailbook dovecot install` turns the auth cache on (auth_cache_ttl 900 s): logins go on
while PostgreSQL is away, but a cached answer (password hash, services, maildir, quota)
is used until the ttl passes. Triggers record, for every committed change of what
Dovecot's queries read, the mailbox or domain it concerns (migration
0205_add_auth_cache_changes, table auth_cache_changes) and notify channel mailbook_auth
(no payload). The follower, on the Dovecot host, connects as mailauth and LISTENs; for
each batch, in one REPEATABLE READ READ ONLY transaction, it takes a snapshot S and asks
which mailboxes transactions seen by S and not by its previous snapshot made stale
(auth_cache_changed_users()), runs `doveadm auth cache flush USER...` for them, and
only then goes on from S (a failed doveadm repeats the batch). So a change counts at
the next lookup, within about a second, and the rest of the cache stays.

It flushes every user (`doveadm auth cache flush`) only right after it has read from
PostgreSQL: at start (it does not know what changed while it was not running), when its
snapshot is older than what prune_auth_cache_changes() kept, for a TRUNCATE, and for a
batch of more than FLUSH_ALL_USERS users. While PostgreSQL is unreachable it flushes
nothing: the cache is then all Dovecot has, and nothing can have changed.

What it has flushed it says in its session's application_name, which pg_stat_activity
shows to every role: "mailbook dovecot follow" until its first batch, then
"mailbook dovecot follow SNAPSHOT" after each batch whose flush worked (every change
that snapshot sees is flushed). `mailbook doctor --live` reads it: a follower is
connected, and no change older than a minute is left unflushed. A snapshot too long
for application_name (63 bytes) is said as "XMIN:XMIN:", which claims less than was
done, never more.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable

import psycopg

from mailbook.database import listen
from mailbook.database.snapshots import read_snapshot

CHANNEL = "mailbook_auth"
# more users than this in one batch (a bulk import, a domain disabled) flush everything:
# one doveadm call instead of many, and the cache refills from a database that answers
FLUSH_ALL_USERS = 1000
# users per doveadm call (its command line)
CHUNK = 200
# the session's application_name, alone or followed by the last snapshot flushed
APPLICATION = "mailbook dovecot follow"
NAMEDATALEN = 63  # bytes PostgreSQL keeps of an application_name


class FlushFailed(listen.BatchFailed):
    """doveadm could not flush (Dovecot stopped, no permission): the batch is repeated."""


class Follower:
    def __init__(self, dsn: str | None, doveadm: list[str], poll: float = 5.0, keep: str = "1 day",
                 prune_every: float = 3600.0, say: Callable[[str], None] = lambda line: print(line, flush=True)):
        self.dsn, self.doveadm, self.poll, self.keep, self.prune_every, self.say = \
            dsn, doveadm, poll, keep, prune_every, say
        self.snapshot: str | None = None  # None: nothing flushed yet, flush every user
        self.pruned_at = 0.0

    def flush(self, users: list[str] | None) -> None:
        """doveadm auth cache flush for users (None: every user), CHUNK at a time."""
        chunks = [[]] if users is None else [users[i:i + CHUNK] for i in range(0, len(users), CHUNK)]
        for chunk in chunks:
            try:
                r = subprocess.run([*self.doveadm, "auth", "cache", "flush", *chunk],
                                   capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise FlushFailed(f"{shlex.join(self.doveadm)} auth cache flush: {exc}") from None
            if r.returncode != 0:
                lines = [line for line in (r.stderr + r.stdout).splitlines() if line.strip()]
                raise FlushFailed(f"{shlex.join(self.doveadm)} auth cache flush failed (exit {r.returncode}):"
                                  f" {lines[-1] if lines else ''}")

    def batch(self, conn: psycopg.Connection) -> list[str] | None:
        """Flush what committed since the last snapshot; the users flushed, None for every
        user, [] for none."""
        why = None
        users: list[str | None] = []
        try:
            with read_snapshot(conn):
                snap = conn.execute("SELECT pg_catalog.pg_current_snapshot()::text").fetchone()[0]
                if self.snapshot is None:
                    why = "at start: changes made before are unknown"
                else:
                    users = [u for (u,) in conn.execute(
                        "SELECT email FROM public.auth_cache_changed_users(%s::pg_snapshot) LIMIT %s",
                        (self.snapshot, FLUSH_ALL_USERS + 1)).fetchall()]
        except psycopg.errors.ObjectNotInPrerequisiteState:
            why = "changes since the last snapshot were pruned"
            snap = conn.execute("SELECT pg_catalog.pg_current_snapshot()::text").fetchone()[0]
        if why is None and None in users:
            why = "a table was truncated"
        elif why is None and len(users) > FLUSH_ALL_USERS:
            why = f"more than {FLUSH_ALL_USERS} users changed"
        if why is not None:
            self.flush(None)
            self.say(f"flushed every user from Dovecot's auth cache ({why})")
            self.snapshot = snap
            self.acknowledge(conn, snap)
            return None
        if users:
            self.flush(sorted(users))
        self.snapshot = snap
        self.acknowledge(conn, snap)
        return users

    def acknowledge(self, conn: psycopg.Connection, snap: str) -> None:
        """Say in application_name that every change snap sees is flushed."""
        said = f"{APPLICATION} {snap}"
        if len(said) > NAMEDATALEN:  # in-progress transactions listed: claim only below xmin
            xmin = snap.split(":", 1)[0]
            said = f"{APPLICATION} {xmin}:{xmin}:"
        conn.execute("SELECT pg_catalog.set_config('application_name', %s, false)", (said,))

    def prune(self, conn: psycopg.Connection) -> None:
        """Now and then, delete change records older than keep (any follower may)."""
        if time.monotonic() - self.pruned_at < self.prune_every:
            return
        self.pruned_at = time.monotonic()
        try:
            conn.execute("SELECT public.prune_auth_cache_changes(%s::interval)", (self.keep,))
        except psycopg.errors.ReadOnlySqlTransaction:  # a standby: the primary's follower prunes
            pass

    def run(self, once: bool = False) -> None:
        """Flush every user once connected, then wait for a notification (or the poll
        interval) and flush what changed, for ever; across a lost connection, retry with
        backoff and catch up from the last snapshot. once: one batch and return."""
        listen.follow(self.dsn, CHANNEL, self._batch, poll=self.poll, once=once, say=self.say,
                      while_away="Dovecot answers from its cache, nothing is flushed",
                      application_name=APPLICATION, between=self.prune)

    def _batch(self, conn: psycopg.Connection) -> None:
        started = time.monotonic()
        users = self.batch(conn)
        if users:
            self.say(f"flushed {len(users)} user(s) in {time.monotonic() - started:.3f} s: "
                     + " ".join(users[:10]) + (" ..." if len(users) > 10 else ""))


def run(dsn: str | None, doveadm: str, poll: float, keep: str, once: bool) -> None:
    listen.until_stopped(lambda: Follower(dsn, shlex.split(doveadm), poll, keep).run(once))

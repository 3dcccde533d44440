"""The loop of a follower (`maps follow`, `dovecot follow`): LISTEN on a channel, run a
batch, wait for a notification or the poll interval, run the next; across a lost
connection, say so and retry with backoff (1 s doubling to 30 s), then catch up.

What a batch does, and what it says, is the follower's; the loop says only that
PostgreSQL went away (and what the daemon does meanwhile) and that it is back.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable

import psycopg

from mailbook import ConnectionFailure, Failure, connect, describe


class BatchFailed(Failure):
    """A batch that could not finish for a reason outside the database (a program it runs
    failed): said, and tried again after the poll interval on the same connection."""


def follow(dsn: str | None, channel: str, batch: Callable[[psycopg.Connection], None], *, poll: float,
           once: bool, say: Callable[[str], None], while_away: str, application_name: str | None = None,
           between: Callable[[psycopg.Connection], None] = lambda conn: None) -> None:
    """Connect (autocommit), LISTEN channel, then batch(conn) for ever: after each, between(conn)
    and a wait for a notification or poll seconds. once: one batch, and every failure raised.
    while_away: what goes on while PostgreSQL is unreachable, for the line that says so."""
    options = {"fallback_application_name": application_name} if application_name else {}
    backoff = 1.0
    while True:
        try:
            with connect(dsn, autocommit=True, **options) as conn:
                conn.execute(f"LISTEN {channel}")
                if backoff > 1.0:
                    say("reconnected to PostgreSQL; catching up")
                backoff = 1.0
                while True:
                    try:
                        batch(conn)
                    except BatchFailed as exc:
                        if once:
                            raise
                        say(f"{exc}; trying again in {poll:.0f} s")
                        time.sleep(poll)
                        continue
                    if once:
                        return
                    between(conn)
                    wait(conn, poll)
        except (psycopg.OperationalError, ConnectionFailure) as exc:  # the server went away, or is not back yet
            if once:
                raise
            say(f"PostgreSQL unavailable ({describe(exc)}); {while_away}; retrying in {backoff:.0f} s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


def wait(conn: psycopg.Connection, poll: float) -> None:
    """Until a notification arrives (those that came during the batch are queued) or poll
    seconds pass; then a moment more, so that commits arriving together make one batch."""
    if any(True for _ in conn.notifies(timeout=poll, stop_after=1)):
        for _ in conn.notifies(timeout=0.02):
            pass


def until_stopped(run: Callable[[], None]) -> None:
    """run() as a daemon: SIGTERM (systemctl stop) and Ctrl-C end it with exit status 0."""
    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    try:
        run()
    except KeyboardInterrupt:
        sys.exit(0)

"""The loop both followers (`maps follow`, `dovecot follow`) run (mailbook.database.listen),
against the session's real PostgreSQL: a notification starts the next batch, a failed
batch is tried again, an unreachable server is said and retried, SIGTERM exits 0."""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest

from mailbook import ConnectionFailure
from mailbook.database import listen

CHANNEL = "mailbook_listen_test"
DOWN = "host=127.0.0.1 port=1 dbname=mail connect_timeout=2"  # nothing listens on port 1


class Done(Exception):
    """Ends a loop that would run for ever."""


def test_notify_starts_the_next_batch(cluster):
    """A NOTIFY committed during a batch starts the next one at once (not after the poll
    interval), with between() run in between, on one LISTENing connection."""
    batches, between = [], []

    def batch(conn):
        batches.append((time.monotonic(), conn.info.backend_pid))
        if len(batches) == 1:
            with psycopg.connect(cluster.dsn(), autocommit=True) as other:
                other.execute(f"NOTIFY {CHANNEL}")
        else:
            raise Done
    with pytest.raises(Done):
        listen.follow(cluster.dsn(), CHANNEL, batch, poll=30, once=False, say=print, while_away="-",
                      between=lambda conn: between.append(conn.info.backend_pid))
    (first, pid), (second, pid2) = batches
    assert second - first < 5 and pid == pid2 and between == [pid]


def test_failed_batch_is_tried_again(cluster):
    """BatchFailed is said and the batch tried again after the poll interval, on the same
    connection, between() not run; with once it is raised."""
    said, pids = [], []

    def batch(conn):
        pids.append(conn.info.backend_pid)
        if len(pids) == 1:
            raise listen.BatchFailed("doveadm auth cache flush failed (exit 75)")
        raise Done
    with pytest.raises(Done):
        listen.follow(cluster.dsn(), CHANNEL, batch, poll=0.2, once=False, say=said.append, while_away="-",
                      between=lambda conn: said.append("between"))
    assert said == ["doveadm auth cache flush failed (exit 75); trying again in 0 s"] and pids[0] == pids[1]

    def fails(conn):
        raise listen.BatchFailed("doveadm auth cache flush failed (exit 75)")
    with pytest.raises(listen.BatchFailed):
        listen.follow(cluster.dsn(), CHANNEL, fails, poll=0.2, once=True, say=said.append, while_away="-")


def test_unreachable_server_is_said(cluster):
    """An unreachable PostgreSQL: one line saying what goes on meanwhile and when it is
    tried again; with once the connection failure is raised."""
    said = []

    def say(line):
        said.append(line)
        raise Done
    with pytest.raises(Done):
        listen.follow(DOWN, CHANNEL, lambda conn: None, poll=1, once=False, say=say,
                      while_away="Postfix goes on answering from the tables")
    assert said[0].startswith("PostgreSQL unavailable (cannot connect to PostgreSQL: ")
    assert said[0].endswith("); Postfix goes on answering from the tables; retrying in 1 s"), said
    with pytest.raises(ConnectionFailure):
        listen.follow(DOWN, CHANNEL, lambda conn: None, poll=1, once=True, say=say, while_away="-")


def test_sigterm_exits_zero():
    """until_stopped: SIGTERM (systemctl stop) ends the run with exit status 0."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exc:
            listen.until_stopped(lambda: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(10))
        assert exc.value.code == 0
    finally:
        signal.signal(signal.SIGTERM, before)

"""Reading the mail database in one snapshot: what `maps compile`, `maps verify`, each batch
of `maps follow` and of `dovecot follow` read in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg


@contextlib.contextmanager
def read_snapshot(conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """One REPEATABLE READ READ ONLY transaction on conn: every query inside sees the same
    snapshot. conn is back in autocommit afterwards, unless the connection broke meanwhile."""
    conn.autocommit = False
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    try:
        with conn.transaction():
            yield conn
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = True

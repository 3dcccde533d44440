"""Many sessions at once, through the SQL API as provisioning admins do: exactly one winner
per address, a clear error for every loser, no deadlock, nothing half-written; and lookups
that run while mailboxes are removed see either the whole mailbox or nothing."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from mailbook.postfix.maps import expand, map_files
from tests.harness.database import ADMIN_LOGIN

MAILBOXES_CF = next(m for m in map_files() if m.name == "mailboxes.cf")  # the query Postfix sends


def session(db) -> psycopg.Connection:
    conn = psycopg.connect(db.info.dsn, autocommit=True)
    conn.execute(f"SET ROLE {ADMIN_LOGIN}")
    return conn


def test_eight_workers_one_winner(db):
    """Eight workers adding the same and their own mailboxes leave one winner each."""
    db.execute("SELECT add_domain('example.com')")
    hash_ = db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]
    shared = [f"same{i}@example.com" for i in range(25)]
    start = threading.Barrier(8)

    def worker(w: int):
        won, lost, other = [], [], []
        with session(db) as conn:
            start.wait()
            for i, address in enumerate(shared):
                for mine in (address, f"w{w}.{i}@example.com"):
                    try:
                        conn.execute("SELECT add_mailbox_hashed(%s, %s)", (mine, hash_))
                        won.append(mine)
                    except psycopg.Error as exc:
                        (lost if exc.sqlstate == "23505" and f'"{mine}"' in str(exc) else other).append((mine, exc))
        return won, lost, other

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    winners = [a for won, _, _ in results for a in won]
    assert [o for *_, other in results for o in other] == []  # no deadlock, no odd error
    assert sorted(a for a in winners if a.startswith("same")) == sorted(shared)  # one winner each
    assert sum(len(lost) for _, lost, _ in results) == 7 * len(shared)  # a clear 23505 for the rest
    rows = db.execute("SELECT count(*), count(DISTINCT maildir) FROM users").fetchone()
    assert rows == (len(shared) + 8 * len(shared),) * 2


def test_lookups_during_removals_see_a_whole_mailbox_or_nothing(db):
    db.execute("SELECT add_domain('example.com')")
    hash_ = db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]
    addresses = [f"u{i}@example.com" for i in range(300)]
    db.execute("SELECT count(add_mailbox_hashed(a, %s)) FROM unnest(%s::text[]) a", (hash_, addresses))
    done = threading.Event()
    seen: list[object] = []

    def reader():
        with psycopg.connect(db.info.dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailreader")
            while not done.is_set():
                for a in addresses[::7]:
                    row = conn.execute(expand(MAILBOXES_CF.query, a)).fetchone()
                    seen.append(row[0] if row else None)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        with session(db) as conn:
            for a in addresses:
                conn.execute("SELECT remove_mailbox(%s)", (a,))
    finally:
        done.set()
        for t in readers:
            t.join(30)
    expected = {f"example.com/u{i}/" for i in range(300)}
    assert seen and all(v is None or v in expected for v in seen)
    assert None in seen and any(v is not None for v in seen)
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_eight_workers_racing_for_a_capped_domains_places_fill_it_exactly(db):
    """Two capped domains: eight sessions add mailboxes and aliases as fast as they can;
    exactly the caps are taken (count and total quota), every loser gets 23514 naming
    the cap, and nobody deadlocks."""
    db.execute("SELECT add_domain('example.com')")
    db.execute("SELECT add_domain('example.org')")
    db.execute("SELECT set_domain_limits('example.com', 20, 40, 1000000)")
    db.execute("SELECT set_domain_limits('example.org', 20, NULL, NULL)")
    hash_ = db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]
    start = threading.Barrier(8)

    def worker(w: int):
        won, refused, other = 0, 0, []
        with session(db) as conn:
            start.wait()
            for i in range(10):
                for statement, params in (
                        ("SELECT add_mailbox_hashed(%s, %s, NULL, NULL, 50000)", (f"w{w}.{i}@example.com", hash_)),
                        ("SELECT add_alias(%s, 'postmaster@example.net')", (f"a{w}.{i}@example.com",)),
                        # two mailboxes in one statement, in either order
                        ("SELECT add_mailbox_hashed(a, %s) FROM unnest(%s::text[]) a",
                         (hash_, [f"x{w}.{i}@example.org", f"y{w}.{i}@example.org"][::1 if w % 2 else -1]))):
                    try:
                        conn.execute(statement, params)
                        won += 1
                    except psycopg.Error as exc:
                        if exc.sqlstate == "23514" and "example." in str(exc):
                            refused += 1
                        else:
                            other.append(exc)
        return won, refused, other

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(worker, range(8)))
    assert [o for *_, other in results for o in other] == []  # no deadlock, no odd error
    counts = dict(db.execute("SELECT domain, count(*) FROM users GROUP BY domain").fetchall())
    assert counts == {"example.com": 20, "example.org": 20}
    assert db.execute("SELECT count(DISTINCT alias) FROM aliases WHERE domain = 'example.com'").fetchone() == (40,)
    assert db.execute("SELECT sum(quota_bytes) FROM users WHERE domain = 'example.com'").fetchone() == (1000000,)

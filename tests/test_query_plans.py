"""Every lookup Postfix and Dovecot send, planned on a database of provider size: index
scans only, never a sequential scan of users or aliases. A plan is deterministic once
the statistics are there, so this is a test; the timings live in benchmarks/."""

from __future__ import annotations

import json

import pytest

from mailbook.database.plans import plan_scans
from mailbook.dovecot import dovecot_queries, expand_dovecot
from mailbook.postfix.maps import expand, map_files

MAILBOXES = 100_000
DOMAINS = MAILBOXES // 1000
HASH = "{BLF-CRYPT}$2a$04$" + "a" * 53


@pytest.fixture
def big(db):
    """MAILBOXES mailboxes over DOMAINS domains, one alias per five mailboxes, analysed."""
    db.execute("RESET ROLE")
    db.execute("INSERT INTO transports (domain) SELECT format('d%%s.example.com', d) FROM generate_series(1, %s) d",
               (DOMAINS,))
    db.execute("""
        INSERT INTO users (email, password, maildir)
        SELECT format('u%%s@d%%s.example.com', i, i %% %(d)s + 1), %(hash)s,
               format('d%%s.example.com/u%%s/', i %% %(d)s + 1, i)
          FROM generate_series(1, %(n)s) i""", {"d": DOMAINS, "n": MAILBOXES, "hash": HASH})
    db.execute("""
        INSERT INTO aliases (alias, email)
        SELECT format('a%%s@d%%s.example.com', i, i %% %(d)s + 1), format('u%%s@d%%s.example.com', i, i %% %(d)s + 1)
          FROM generate_series(1, %(n)s, 5) i""", {"d": DOMAINS, "n": MAILBOXES})
    # one mailbox in a hundred renamed within the last 5 days (0216): its former address
    db.execute("""
        INSERT INTO former_addresses (address, email, until)
        SELECT format('was%%s@d%%s.example.com', i, i %% %(d)s + 1), format('u%%s@d%%s.example.com', i, i %% %(d)s + 1),
               now() + interval '5 days'
          FROM generate_series(1, %(n)s, 100) i""", {"d": DOMAINS, "n": MAILBOXES})
    db.execute("ANALYZE transports, users, aliases, former_addresses")
    return db


def lookups() -> list[tuple[str, str]]:
    """(what, SQL) for a hit and a miss of every Postfix map and Dovecot query."""
    keys = ["u4242@d43.example.com", "a4241@d42.example.com", "nobody@d7.example.com", "x@unhosted.org"]
    out = []
    for m in map_files():
        for key in keys + ["d43.example.com"]:
            sql = expand(m.query, key)
            if sql is not None:
                out.append((f"{m.name} {key}", sql))
    for name, query in dovecot_queries().items():
        for key in keys:
            out.append((f"{name} {key}", expand_dovecot(query, key)))
    return out


def test_lookups_use_indexes(big):
    """Every Postfix and Dovecot lookup uses indexes and reads a handful of pages."""
    checked = set()
    for role in ("mailreader", "mailauth"):
        big.execute(f"SET ROLE {role}")
        for what, sql in lookups():
            if role == "mailauth" and not what.startswith(("password_query", "user_query")):
                continue
            if role == "mailreader" and what.startswith(("password_query", "user_query")):
                continue
            (plan,) = big.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0]
            found = plan_scans(plan["Plan"])
            checked.add(what.split()[0])
            if "postfix_" in sql and not found:
                continue  # a lookup function (sql/api/70_lookups.sql): its pages are counted below
            assert found, what
            for node, relation in found:
                assert node != "Seq Scan" or relation == "transports" and DOMAINS <= 200, (what, found)
                # a CTE Scan reads a WITH query's own result (sender-login.cf's one row), a
                # Function Scan a function's (password_query's password_expiry_check(), per row)
                assert node in ("Index Scan", "Index Only Scan", "Seq Scan", "Bitmap Heap Scan",
                                "Bitmap Index Scan", "CTE Scan", "Function Scan"), (what, found)
                assert node != "Function Scan" or relation == "", (what, found)
        big.execute("RESET ROLE")
    assert checked == {m.name for m in map_files()} | set(dovecot_queries()), checked

    # and run: the pages each lookup reads stay a handful, not a share of N
    big.execute("SET ROLE mailreader")
    for what, sql in lookups():
        if what.startswith(("password_query", "user_query")):
            continue
        if "postfix_" in sql:  # a lookup function's first call in a session reads the catalog to compile it
            big.execute(sql).fetchall()
        (plan,) = big.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql).fetchone()[0]
        buffers = plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]
        assert buffers < 40, (what, json.dumps(plan["Plan"])[:2000])


def test_user_query_former_address_cost(big):
    """user_query (Dovecot's userdb, every LMTP delivery and login) resolves a renamed
    mailbox's former address (0216) to the mailbox, and a normal lookup pays for it one
    index probe of former_addresses' primary key: at most 3 more pages than the query
    without it, and a handful in all."""
    query = dovecot_queries()["user_query"]
    former = "coalesce((SELECT f.email FROM former_addresses f WHERE f.address = '%u' AND f.until > now()), '%u')"
    assert former in query
    before_0216 = query.replace(former, "'%u'").replace("SELECT u.email AS user, ", "SELECT ")
    big.execute("SET ROLE mailauth")
    assert big.execute(expand_dovecot(query, "was4201@d2.example.com")).fetchone()[:2] == (
        "u4201@d2.example.com", "/home/mail/d2.example.com/u4201/"), "the former address finds the mailbox"
    assert big.execute(expand_dovecot(query, "u4242@d43.example.com")).fetchone()[0] == "u4242@d43.example.com"

    def pages(sql: str) -> int:
        big.execute(sql).fetchall()  # warm
        (plan,) = big.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql).fetchone()[0]
        return plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"]

    for key in ("u4242@d43.example.com", "nobody@d7.example.com"):
        now, then = pages(expand_dovecot(query, key)), pages(expand_dovecot(before_0216, key))
        assert now <= then + 3 and now < 40, (key, now, then)

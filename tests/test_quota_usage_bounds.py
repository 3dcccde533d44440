"""The usage counters Dovecot writes (quota_usage, as mailquota) are bounded (0203:
bytes 0 to 2^53, messages 0 to 2^31 - 1; tests/pgtap/14_usage_and_vacations.sql holds
the CHECKs). Here: doctor reads a share far beyond a quota as such, not as a 16-digit
percentage (issue 28: "922337203685478% of its quota"), and a write PostgreSQL refuses
costs a real Dovecot 2.3 only that write: the message is delivered, quota_clone logs
the failure and writes the row at the next change.

The second test needs root (Postfix and Dovecot, the LMTP stack of test_lmtp_delivery.py,
from tests/harness/lmtp.py).
"""

from __future__ import annotations

import json
import time

import psycopg

# the LMTP stack of test_lmtp_delivery.py: Postfix delivering through Dovecot's LMTP, quota_clone on
from tests.harness.lmtp import admin_dsn, daemons, dovecot, postfix, usage  # noqa: F401  (the fixtures)
from tests.harness.process import cli, wait_for


def test_doctor_caps_a_share_far_beyond_the_quota(db):
    """2^53 bytes (the bound) in a 1,000-byte quota reads as "more than 1000%"."""
    db.execute("SET ROLE mailadmin")
    db.execute("SELECT add_domain('example.com')")
    db.execute("SELECT add_mailbox('full@example.com', 'full secret pw')")
    db.execute("SELECT set_mailbox_quota('full@example.com', 1000)")
    db.execute("SET ROLE mailquota")
    db.execute("INSERT INTO quota_usage (bytes, messages, email) VALUES (9007199254740992, 1, 'full@example.com')")
    db.execute("RESET ROLE")
    info = db.info
    dsn = f"host={info.host} port={info.port} user={info.user} dbname={info.dbname}"
    r = cli(["doctor", "--dsn", dsn, "--json"])
    (usage_row,) = [c for c in json.loads(r.stdout) if c["check"] == "mailbox usage"]
    assert usage_row["status"] == "warn"
    assert usage_row["detail"].startswith("full@example.com uses more than 1000% of its quota (9,007,199,254,740,992"), \
        usage_row


def test_a_refused_usage_write_still_delivers(postfix, dovecot, admin_dsn):
    """While PostgreSQL refuses every quota_usage write (a constraint added for the test),
    LMTP still delivers; Dovecot logs the failed dict commit; once writes are taken
    again, the next delivery writes the row."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM quota_usage WHERE email = 'bar@example.com'")
        conn.execute("ALTER TABLE quota_usage ADD CONSTRAINT test_refuse_all CHECK (bytes < 0) NOT VALID")
    try:
        postfix.send("bar@example.com", "while usage writes are refused")
        postfix.delivered("example.com/bar/", "while usage writes are refused")
        deadline = time.monotonic() + 20
        while "test_refuse_all" not in dovecot.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        failures = [line for line in dovecot.log_text().splitlines() if "test_refuse_all" in line]
        assert failures and "quota" in failures[0].lower(), dovecot.log_text()[-3000:]
        assert usage(admin_dsn, "bar@example.com") == (None, None)  # no row: the view's outer join
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("ALTER TABLE quota_usage DROP CONSTRAINT test_refuse_all")
    postfix.send("bar@example.com", "after usage writes are taken again")
    postfix.delivered("example.com/bar/", "after usage writes are taken again")
    wait_for(lambda: (usage(admin_dsn, "bar@example.com")[1] or 0) >= 2, "bar's usage row, both messages")

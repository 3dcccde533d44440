"""`mailbook doctor` on real databases: a healthy one passes (with the test cluster's
local trust line as a warning), and each broken promise is a named failure, exit 1."""

from __future__ import annotations

import json

import psycopg

from conftest import cli


def rows(stdout: str) -> dict[str, list[str]]:
    """check name -> statuses, from `doctor --json`."""
    found: dict[str, list[str]] = {}
    for c in json.loads(stdout):
        found.setdefault(c["check"], []).append(c["status"])
    return found


def test_a_healthy_mail_database_passes_every_check(mail_dsn):
    r = cli(["doctor", "--dsn", mail_dsn, "--json"])
    assert r.exit_code == 0, r.stdout + r.stderr
    found = rows(r.stdout)
    for check in ("PostgreSQL version", "password_encryption", "pgcrypto", "role mailowner", "role mailadmin",
                  "role mailreader", "role mailauth", "PUBLIC may use nothing", "service roles write nothing",
                  "password hashes", "migrations"):
        assert found.get(check) == ["pass"], (check, r.stdout)
    # the test cluster lets its superuser in over the socket without a password: said, not failed
    assert found["pg_hba.conf"] == ["warn"] and "trust on the local socket" in r.stdout


def test_each_broken_promise_is_a_named_failure(fresh_db):
    cli(["migrate", "apply", "--dsn", fresh_db], check=True)
    cli(["migrate", "rollback", "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON public.settings TO PUBLIC")
        conn.execute("GRANT INSERT ON public.aliases TO mailreader")
        conn.execute("GRANT SELECT (password) ON public.users TO mailreader")
    try:
        r = cli(["doctor", "--dsn", fresh_db, "--json"])
        found = rows(r.stdout)
        assert r.exit_code == 1 and "Traceback" not in r.stderr
        assert found["PUBLIC may use nothing"] == ["fail"] and "SELECT on settings" in r.stdout
        assert found["service roles write nothing"] == ["fail"] and "mailreader may INSERT aliases" in r.stdout
        assert found["password hashes"] == ["fail"]
        assert found["migrations"] == ["warn"] and "1 pending" in r.stdout
        assert r.stderr.startswith("mailbook: 3 check(s) failed: ") and r.stderr.count("\n") == 1
    finally:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            conn.execute("REVOKE SELECT ON public.settings FROM PUBLIC")
            conn.execute("REVOKE INSERT ON public.aliases FROM mailreader")
            conn.execute("REVOKE SELECT (password) ON public.users FROM mailreader")

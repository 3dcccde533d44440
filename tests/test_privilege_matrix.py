"""The privilege matrix docs/security.md prints is what a freshly migrated mail database grants,
and a fresh login role may do exactly what PUBLIC may (nothing)."""

from __future__ import annotations

import psycopg

from mailbook.database.privileges import ROLES, matrix
from tests.harness.process import ROOT, cli, keep_generated

BEGIN = "<!-- privilege matrix: `mailbook privileges` -->\n"
END = "<!-- end of privilege matrix -->"


def test_the_security_page_prints_the_matrix_the_mail_database_grants(mail_dsn):
    live = cli(["privileges", "--dsn", mail_dsn], check=True).stdout
    keep_generated(ROOT / "docs" / "security.md", live, "tests/test_privilege_matrix.py", BEGIN, END)


def test_a_fresh_login_role_may_do_exactly_what_public_may(mail_dsn):
    with psycopg.connect(mail_dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE fresh_login LOGIN")
        try:
            rows = matrix(conn, ("public", "fresh_login"))
        finally:
            conn.execute("DROP ROLE fresh_login")
    assert rows and all(cells["fresh_login"] == cells["public"] for _, _, cells in rows)
    assert {cells["public"] for kind, _, cells in rows if kind != "function"} == {""}


def test_neither_service_role_may_write_anything(mail_dsn):
    with psycopg.connect(mail_dsn) as conn:
        rows = matrix(conn, ROLES)
    for _, name, cells in rows:
        for role in ("mailreader", "mailauth"):
            assert not {"INSERT", "UPDATE", "DELETE", "TRUNCATE", "CREATE"} & set(cells[role].split()), (name, role)

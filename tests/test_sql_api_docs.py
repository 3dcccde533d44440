"""The catalogue documents itself: every role, table, column, view and function of the
mail database has a comment (psql's \\d+, \\df+ and \\du+ answer), and docs/sql-api.md is
generated from those comments."""

from __future__ import annotations

import psycopg

from tests.harness import sqldocs
from tests.harness.process import ROOT, keep_generated

DOC = ROOT / "docs" / "sql-api.md"


def test_every_role_table_column_view_and_function_has_a_comment(mail_dsn):
    with psycopg.connect(mail_dsn) as conn:
        assert sqldocs.undocumented(conn) == []


def test_an_api_functions_comment_is_the_block_above_it_in_sql_api(mail_dsn):
    with psycopg.connect(mail_dsn) as conn:
        doc = conn.execute("SELECT obj_description('public.add_mailbox(text,text,text,text,bigint)'::regprocedure,"
                           " 'pg_proc')").fetchone()[0]
    block = (ROOT / "sql" / "api" / "40_mailboxes.sql").read_text().split("-- add_mailbox(email,", 1)[1]
    assert doc.startswith("add_mailbox(email, password, realname, maildir, quota_bytes) -> mailboxes\nCaller:")
    assert "23505 if the address or maildir exists" in doc and "23505 if the address or maildir exists" in block


def test_docs_sql_api_is_generated_from_the_catalogue(mail_dsn):
    with psycopg.connect(mail_dsn) as conn:
        live = sqldocs.markdown(conn)
    keep_generated(DOC, live, "tests/test_sql_api_docs.py", sqldocs.MARK)

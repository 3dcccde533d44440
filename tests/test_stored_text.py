"""Stored text that would harm whoever opens it later (issue 15): an export opened in a
spreadsheet must not run formulas, and a realname must not hide what it is behind
invisible format characters. The export neutralises, the import undoes it, so
export -> import -> export stays byte for byte the same."""

from __future__ import annotations

import csv
import io

import psycopg
import pytest

from conftest import ADMIN_PASSWORD, cli

FORMULAS = ["=cmd|' /C calc'!A0", "+1", "-x", "@SUM(1)", "'=already", "''=x", "'t Hooft", "=HYPERLINK(\"x\")",
            "Plain Name", "O'Neil"]


@pytest.fixture
def admin_dsn(db, cluster):
    return f"host=127.0.0.1 port={cluster.port} dbname={db.info.dbname} user=alice"


def alice(args, admin_dsn, input=None):
    """`mailbook NOUN VERB --dsn … ARGS` as the help-desk login (options first: an
    argument may start with "-", after "--")."""
    return cli([*args[:2], "--dsn", admin_dsn, *args[2:]], input=input, env={"PGPASSWORD": ADMIN_PASSWORD})


def test_an_export_opened_in_a_spreadsheet_runs_no_formula_and_imports_back_byte_for_byte(
        db, cluster, admin_dsn, fresh_db, tmp_path):
    assert alice(["domain", "add", "example.com"], admin_dsn).exit_code == 0
    for i, name in enumerate(FORMULAS):
        r = alice(["mailbox", "add", f"--name={name}", "--password-stdin", f"u{i}@example.com"], admin_dsn,
                  f"secret number {i}\n")
        assert r.exit_code == 0, r
    # addresses and maildirs may start with a formula character too
    for args in (["mailbox", "add", "--maildir", "=maildir/", "--password-stdin", "--", "-dash@example.com"],
                 ["alias", "add", "--", "+plus@example.com", "-dash@example.com"],
                 ["alias", "add", "--", "@example.com", "-dash@example.com"]):
        r = alice(args, admin_dsn, "secret dash 1\n")
        assert r.exit_code == 0, r
    exported = cli(["export", "-", "--dsn", cluster.dsn(db.info.dbname)], check=True).stdout
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], "a formula cell left the database"
    for name in FORMULAS:
        expected = "'" + name if name[:1] in "=+-@" or name.lstrip("'")[:1] in "=+-@" else name
        assert expected in cells, (name, expected)
    assert "'-dash@example.com" in cells and "'=maildir/" in cells and "'+plus@example.com" in cells
    assert "'@example.com" in cells  # the catch-all

    assert cli(["migrate", "apply", "--dsn", fresh_db]).exit_code == 0
    (tmp_path / "export.csv").write_text(exported)
    cli(["import", str(tmp_path / "export.csv"), "--dsn", fresh_db], check=True)
    with psycopg.connect(fresh_db) as conn:
        stored = dict(conn.execute("SELECT email, realname FROM users WHERE realname IS NOT NULL"))
        assert sorted(stored.values()) == sorted(FORMULAS), "the import did not undo the export's apostrophes"
        assert conn.execute("SELECT maildir FROM users WHERE email = '-dash@example.com'").fetchone() == ("=maildir/",)
    assert cli(["export", "-", "--dsn", fresh_db], check=True).stdout == exported


@pytest.mark.parametrize("name, point", [("Evil\u202egpj.exe", "U+202E"), ("zero\u200bwidth", "U+200B"),
                                         ("soft\u00adhyphen", "U+00AD"), ("isolate\u2066x", "U+2066"),
                                         ("bom\ufeff", "U+FEFF"), ("tag\U000e0041", "U+E0041")])
def test_a_realname_with_an_invisible_format_character_is_refused_naming_it(db, admin_dsn, tmp_path, name, point):
    assert alice(["domain", "add", "example.com"], admin_dsn).exit_code == 0
    r = alice(["mailbox", "add", f"--name={name}", "--password-stdin", "foo@example.com"], admin_dsn, "secret foo 1\n")
    assert r.exit_code == 1 and "SQLSTATE 22023" in r.stderr and point in r.stderr, r
    assert name not in r.stderr, "the error message repeats the invisible character"
    f = tmp_path / "users.csv"
    f.write_text(f"kind,address,password,realname\nmailbox,bar@example.com,secret bar 1,{name}\n", encoding="utf-8")
    r = alice(["import", str(f)], admin_dsn)
    assert r.exit_code == 1 and f"{f}:2:" in r.stderr and point in r.stderr, r
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)

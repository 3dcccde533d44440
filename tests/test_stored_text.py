"""Stored text that would harm whoever opens it later (issue 15): an export opened in a
spreadsheet must not run formulas, and a realname must not hide what it is behind
invisible format characters. The export neutralises, the import undoes it, so
export -> import -> export stays byte for byte the same."""

from __future__ import annotations

import csv
import io
import json

import psycopg
import pytest

from tests.harness.database import ADMIN_PASSWORD
from tests.harness.process import cli

FORMULAS = ["=cmd|' /C calc'!A0", "+1", "-x", "@SUM(1)", "'=already", "''=x", "'t Hooft", "=HYPERLINK(\"x\")",
            "Plain Name", "O'Neil"]


@pytest.fixture
def admin_dsn(db, cluster):
    return f"host=127.0.0.1 port={cluster.port} dbname={db.info.dbname} user=alice"


def alice(args, admin_dsn, input=None):
    """`mailbook NOUN VERB --dsn … ARGS` as the help-desk login (options first: an
    argument may start with "-", after "--")."""
    return cli([*args[:2], "--dsn", admin_dsn, *args[2:]], input=input, env={"PGPASSWORD": ADMIN_PASSWORD})


def test_export_no_formula(
        db, cluster, admin_dsn, fresh_db, tmp_path):
    """An export opened in a spreadsheet runs no formula and imports back byte for byte."""
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
def test_realname_invisible_char(db, admin_dsn, tmp_path, name, point):
    """A realname with an invisible format character is refused naming it."""
    assert alice(["domain", "add", "example.com"], admin_dsn).exit_code == 0
    r = alice(["mailbox", "add", f"--name={name}", "--password-stdin", "foo@example.com"], admin_dsn, "secret foo 1\n")
    assert r.exit_code == 1 and "SQLSTATE 22023" in r.stderr and point in r.stderr, r
    assert name not in r.stderr, "the error message repeats the invisible character"
    f = tmp_path / "users.csv"
    f.write_text(f"kind,address,password,realname\nmailbox,bar@example.com,secret bar 1,{name}\n", encoding="utf-8")
    r = alice(["import", str(f)], admin_dsn)
    assert r.exit_code == 1 and f"{f}:2:" in r.stderr and point in r.stderr, r
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)


MARKUP = ["[/]", "[bold]x", "[link=http://x.example]y[/link]", "a [red]b[/red] c"]
HOSTILE_ADDRESS = "[/]x\x1b]0;pwned\x07\x1b[2J\x9b31m@example.com"


def log(args, admin_dsn):
    """`mailbook log --dsn … ARGS` as the help-desk login."""
    return cli(["log", "--dsn", admin_dsn, *args], env={"PGPASSWORD": ADMIN_PASSWORD})


def _controls(text: str) -> list[str]:
    """The C0/C1 control characters and DELs in text, newlines aside."""
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f]


def test_realname_markup_is_printed_literally(db, admin_dsn):
    """A realname that reads as rich markup ("[/]" closes nothing: MarkupError, exit 1
    before 1.0.1) is a name: `mailbox list` prints it as stored, and --json exactly."""
    assert alice(["domain", "add", "example.com"], admin_dsn).exit_code == 0
    for i, name in enumerate(MARKUP):
        r = alice(["mailbox", "add", f"--name={name}", "--password-stdin", f"m{i}@example.com"], admin_dsn,
                  f"secret markup {i}\n")
        assert r.exit_code == 0, r
    r = alice(["mailbox", "list"], admin_dsn)
    assert r.exit_code == 0, r
    for name in MARKUP:
        assert name in r.stdout, (name, r.stdout)
    r = alice(["mailbox", "list", "--json"], admin_dsn)
    assert r.exit_code == 0 and sorted(m["realname"] for m in json.loads(r.stdout)) == sorted(MARKUP), r


def test_log_of_a_hostile_refused_address_shows_no_escape(db, admin_dsn):
    """1.0's change_password() recorded a refusal with the address as the webmail sent it
    (here markup, OSC, ESC and CSI bytes); check_current_password() now refuses such an
    address before writing (22023), but rows 1.0 wrote remain. `mailbook log` shows one
    with "?" for each control character and "[/]" literally, no MarkupError; --json gives
    the stored text exactly."""
    db.execute("SET ROLE mailwebmail")
    try:
        code = db.execute("SELECT code FROM public.check_current_password(%s, 'not the password')",
                          (HOSTILE_ADDRESS,)).fetchone()[0]
    finally:
        db.execute("RESET ROLE")
    assert code == "22023"
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
    db.execute("INSERT INTO audit_log (login_role, acting_role, txid, table_name, operation, row_key, reason)"
               " VALUES ('mailwebmail', 'mailwebmail', pg_current_xact_id(), 'users', 'REFUSED', %s,"
               " '28P01: the current password is wrong')", (HOSTILE_ADDRESS.lower(),))
    r = log(["--key", "pwned"], admin_dsn)
    assert r.exit_code == 0, r
    assert not _controls(r.stdout + r.stderr), repr(r.stdout)
    assert "[/]x?]0;pwned??[2j?31m@example.com" in r.stdout and "REFUSED" in r.stdout, r.stdout
    r = log(["--key", "pwned", "--json"], admin_dsn)
    assert r.exit_code == 0 and not _controls(r.stdout), r
    assert [row["key"] for row in json.loads(r.stdout)] == [HOSTILE_ADDRESS.lower()]


def test_error_line_neutralises_control_bytes(db, admin_dsn):
    """PostgreSQL quotes a bad value in its own message as it came: the one-line error
    shows its control characters as "?", so the line stays one line and no sequence runs."""
    r = log(["--since", "2 days\x1b]0;pwned\x07\nsecond line"], admin_dsn)
    assert r.exit_code == 1, r
    assert r.stderr.startswith("mailbook: ") and r.stderr.count("\n") == 1, r
    assert "?]0;pwned??second line" in r.stderr and "(SQLSTATE 22007)" in r.stderr, r.stderr
    assert not _controls(r.stderr)

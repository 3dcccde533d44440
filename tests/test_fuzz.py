"""Hostile input, generated (hypothesis), through every provisioning function and the CLI.

Each call either succeeds, storing values the tables' own rules accept, or fails with a
clear error: a data or integrity SQLSTATE (22, 23, P0) and a message, never a syntax or
internal error (that would mean the input reached SQL as code), and every table exactly as
it was before (a checksum of each)."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.data import HOSTILE
from tests.harness.database import ADMIN_LOGIN, ADMIN_PASSWORD, table_checksums
from tests.harness.process import cli

piece = st.sampled_from(HOSTILE) | st.text(max_size=20)
hostile_text = st.lists(piece, min_size=1, max_size=4).map("".join)
maybe_address = st.tuples(hostile_text, st.sampled_from(["@example.com", "@Example.COM", "@", "@nowhere.org", ""])).map("".join)

CALLS = {
    "add_domain": ("SELECT add_domain(%s)", st.tuples(hostile_text)),
    "add_domain transport": ("SELECT add_domain('fuzz.example', %s)", st.tuples(hostile_text)),
    "add_mailbox": ("SELECT add_mailbox(%s, %s)", st.tuples(maybe_address, hostile_text)),
    "add_mailbox realname maildir": ("SELECT add_mailbox('x@example.com', 'pw', %s, %s)",
                                     st.tuples(hostile_text, hostile_text)),
    "add_mailbox_hashed": ("SELECT add_mailbox_hashed(%s, %s)", st.tuples(maybe_address, hostile_text)),
    "add_alias": ("SELECT add_alias(%s, %s)", st.tuples(maybe_address, maybe_address)),
    "set_password": ("SELECT set_password(%s, %s)", st.tuples(maybe_address, hostile_text)),
    "remove_mailbox": ("SELECT remove_mailbox(%s)", st.tuples(maybe_address)),
    "remove_alias": ("SELECT remove_alias(%s)", st.tuples(maybe_address)),
    "remove_domain": ("SELECT remove_domain(%s)", st.tuples(hostile_text)),
    "set_domain_active": ("SELECT set_domain_active(%s, false)", st.tuples(hostile_text)),
}
ALLOWED = ("22", "23", "P0")


@pytest.fixture
def fuzzed(db):
    db.execute("UPDATE settings SET bcrypt_cost = 4")  # the hashing is not under test here
    db.execute("SELECT add_domain('example.com')")
    db.execute("SELECT add_mailbox('foo@example.com', 'pw')")
    db.execute(f"SET ROLE {ADMIN_LOGIN}")
    return db


@pytest.mark.parametrize("name", CALLS)
def test_every_call_succeeds_cleanly_or_fails_clearly_and_changes_nothing(fuzzed, name):
    query, args = CALLS[name]

    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(args)
    def check(values):
        before = table_checksums(fuzzed)
        try:
            with fuzzed.transaction():
                fuzzed.execute(query, values)
                raise Rollback  # keep each example independent of the others
        except Rollback:
            return
        except psycopg.DataError as exc:
            if exc.sqlstate is None:  # refused by the client: text cannot hold NUL
                assert "\x00" in "".join(values) and "NUL" in str(exc)
                return
            error = exc
        except psycopg.Error as exc:
            error = exc
        assert error.sqlstate[:2] in ALLOWED, (values, error.sqlstate, str(error))
        assert error.diag.message_primary, values
        assert table_checksums(fuzzed) == before, values

    check()


class Rollback(Exception):
    pass


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from([["domain", "add"], ["domain", "remove"], ["mailbox", "remove"], ["alias", "remove"],
                        ["mailbox", "list", "--domain"], ["alias", "list", "--domain"]]),
       hostile_text)
def test_cli_commands_exit_0_or_print_one_line_and_never_a_traceback(dsn_for_fuzz, command, value):
    if "\x00" in value or value.startswith("-"):
        return  # not something a shell can pass as one argument
    r = cli([*command, value, "--dsn", dsn_for_fuzz], env={"PGPASSWORD": ADMIN_PASSWORD})
    assert r.exit_code in (0, 1), (command, value, r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr
    if r.exit_code == 1:
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("mailbook: "), (command, value, r.stderr)


@pytest.fixture
def dsn_for_fuzz(db, cluster):
    """alice (a mailadmin member) over TCP, as test_admin_cli connects."""
    db.execute("SELECT add_domain('example.com')")
    return f"host=127.0.0.1 port={cluster.port} dbname={db.info.dbname} user={ADMIN_LOGIN}"


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from([["mailbox", "add"], ["mailbox", "passwd"], ["alias", "add"], ["domain", "enable"],
                        ["domain", "disable"], ["mailbox", "enable"], ["mailbox", "disable"]]),
       hostile_text, hostile_text)
def test_cli_commands_with_a_password_or_two_arguments_fail_in_one_line(dsn_for_fuzz, command, value, other):
    if "\x00" in value + other or value.startswith("-") or other.startswith("-"):
        return  # not something a shell can pass as one argument
    args = [*command, value]
    if command == ["alias", "add"]:
        args.append(other)
    if command[1] in ("add", "passwd") and command[0] == "mailbox":
        args.append("--password-stdin")
    r = cli([*args, "--dsn", dsn_for_fuzz], input=other + "\n", env={"PGPASSWORD": ADMIN_PASSWORD})
    assert r.exit_code in (0, 1), (args, r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr
    if r.exit_code == 1:
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("mailbook: "), (args, r.stderr)
    secret = command[0] == "mailbox" and command[1] in ("add", "passwd")
    if secret and len(other.strip()) >= 6 and other.lower() not in value.lower():
        assert other not in r.stdout + r.stderr, (args, "the password was echoed")


csv_cell = (st.sampled_from(HOSTILE) | st.text(max_size=12)).filter(lambda v: "\x00" not in v)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["domain", "mailbox", "alias", "Mailbox", "vacation", "", "user"]),
                          csv_cell, csv_cell, csv_cell), min_size=1, max_size=8))
def test_import_of_hostile_csv_writes_all_or_nothing_and_explains_in_lines(dsn_for_fuzz, db, tmp_path_factory, rows):
    import csv
    path = tmp_path_factory.mktemp("fuzz") / "in.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "address", "destination", "password_hash"])
        w.writerows(rows)
    before = table_checksums(db)
    r = cli(["import", str(path), "--dsn", dsn_for_fuzz], env={"PGPASSWORD": ADMIN_PASSWORD})
    assert r.exit_code in (0, 1) and "Traceback" not in r.stderr, r.stderr
    if r.exit_code == 1:
        assert all(line.startswith((f"{path}:", "mailbook: ")) for line in r.stderr.splitlines()), r.stderr
        assert table_checksums(db) == before
    db.execute("RESET ROLE")
    assert db.execute("SELECT count(*) FROM import_staging").fetchone() == (0,)
    db.execute("TRUNCATE send_as, users, aliases, transports CASCADE")  # with what refers to them
    db.execute("INSERT INTO transports (domain) VALUES ('example.com')")

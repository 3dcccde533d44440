"""The admin commands (domain, mailbox, alias, import, export) as a mail admin uses them:
connected as a member of mailadmin, over TCP with a password, against a migrated database."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess

import psycopg
import pytest

from mailbook.provisioning.bulk import COLUMNS
from tests.harness.database import ADMIN_PASSWORD, table_checksums, verified
from tests.harness.process import PYTHON, ROOT, cli


@pytest.fixture
def dsn(db, cluster):
    """alice (a mailadmin member) over TCP, password from the environment."""
    return f"host=127.0.0.1 port={cluster.port} dbname={db.info.dbname} user=alice"


@pytest.fixture
def env():
    return {"PGPASSWORD": ADMIN_PASSWORD}


def mb(args, dsn, env, input=None):
    return cli([*args, "--dsn", dsn], input=input, env=env)


def ok(args, dsn, env, input=None):
    r = mb(args, dsn, env, input)
    assert r.exit_code == 0, r
    return r


def test_every_command_has_help_with_an_example():
    import typer.main

    from runner import app

    group = typer.main.get_command(app)
    seen = 0
    for name, command in group.commands.items():
        assert "mailbook " in (command.help or ""), f"{name}: help should show an example"
        subs = getattr(command, "commands", {name: command})
        for sub_name, sub in subs.items():
            assert sub.help and len(sub.help.split()) >= 4, f"{name} {sub_name} has no real help"
            assert "mailbook " in sub.help, f"{name} {sub_name}: help should show an example"
            seen += 1
    assert seen >= 25


def test_help_reflows():
    """Help texts reflow to the terminal instead of breaking mid sentence, and each
    example stays a line of its own: in `mailbook --help`, a group's and a command's.

    Typer's boxes used to keep the docstrings' hard line breaks: on an 80-column
    terminal a sentence broke at the docstring's column and again at the box's. On
    Python 3.13 (Debian 13), which strips docstrings' indentation when compiling them,
    the examples ran into the paragraph before them."""
    import typer.main

    from runner import app

    group = typer.main.get_command(app)
    paths = [[]] + [[name] for name, command in group.commands.items() if getattr(command, "commands", None)]
    paths += [[name, sub] for name, command in group.commands.items()
              for sub in (getattr(command, "commands", None) or {None: None})]
    for path in paths:
        args = [p for p in path if p] + ["--help"]
        wide = cli(args, env={"COLUMNS": "250"}).stdout
        text = wide.split("╭─", 1)[0]
        command = group
        for p in path:
            command = command.commands[p] if p else command
        rendered = [l.strip() for l in wide.splitlines()]
        examples = [l.strip() for l in f"{command.help}\n{command.epilog}".splitlines()
                    if l.strip().startswith("mailbook ")]
        assert examples or len(path) == 2, (args, "no example")  # commands may start with printf, runuser
        for example in examples:  # each example on a line of its own, whole
            assert example in rendered, (args, example)
        for paragraph in re.split(r"\n[ \t]*\n", text):
            lines = [l.strip() for l in paragraph.strip().splitlines() if l.strip()]
            prose = [l for l in lines if not l.startswith(("mailbook ", "Usage:", "printf ", "export "))]
            assert all(len(l) > 200 for l in prose[:-1]), (args, lines)  # broken only by the width
    demo = cli(["demo", "--help"], env={"COLUMNS": "100"}).stdout
    assert "[default:" in demo and "./.mailbook" in demo  # square brackets are text, not markup


# -- domains, mailboxes, aliases ------------------------------------------------------------

def test_provisioning_round_trip_through_the_cli(dsn, env, db):
    # one line per change, as the admin guide promises
    assert ok(["domain", "add", "Example.COM"], dsn, env).stdout == "added domain example.com (transport virtual:)\n"
    r = ok(["mailbox", "add", "Foo@example.com", "--name", "Foo Lastname", "--password-stdin"], dsn, env,
           input="correct horse\n")
    assert r.stdout == "added foo@example.com (maildir example.com/foo/)\n"
    assert ok(["domain", "add", "example.net", "--alias-of", "example.com"], dsn, env).stdout == \
        "added alias domain example.net: x@example.net reaches x@example.com\n"
    ok(["domain", "remove", "example.net"], dsn, env)
    ok(["alias", "add", "team@example.com", "foo@example.com", "someone@elsewhere.net"], dsn, env)
    listing = json.loads(ok(["mailbox", "list", "--json"], dsn, env).stdout)
    assert [m["email"] for m in listing] == ["foo@example.com"] and "password" not in listing[0]
    aliases = json.loads(ok(["alias", "list", "--json", "--domain", "example.com"], dsn, env).stdout)
    assert {(a["alias"], a["destination"]) for a in aliases} == {
        ("team@example.com", "foo@example.com"), ("team@example.com", "someone@elsewhere.net")}
    domains = json.loads(ok(["domain", "list", "--json"], dsn, env).stdout)
    assert domains == [{"domain": "example.com", "alias_of": None, "transport": "virtual:", "gid": None, "active": True,
                        "services_off": [], "max_mailboxes": None, "max_aliases": None, "max_quota_bytes": None,
                        "max_mailbox_quota_bytes": None,
                        "mailboxes": 1, "aliases": 2}]
    with psycopg.connect(db.info.dsn, autocommit=True) as conn:
        conn.execute("SET ROLE alice")
        assert verified(conn, "foo@example.com", "correct horse")


def test_list_in_a_pipe_prints_every_address_whole_one_row_per_line(dsn, env):
    ok(["domain", "add", "a-rather-long-subdomain.of-an-organisation.example.com"], dsn, env)
    long = "firstname.middlename.lastname@a-rather-long-subdomain.of-an-organisation.example.com"
    ok(["mailbox", "add", long, "--name", "Firstname Middlename Lastname", "--password-stdin"], dsn, env, "pw\n")
    lines = ok(["mailbox", "list"], dsn, env).stdout.splitlines()
    assert lines[0].split()[:3] == ["email", "realname", "maildir"]
    assert len(lines) == 2 and lines[1].split()[0] == long and "…" not in lines[1]
    assert "Firstname Middlename Lastname" in lines[1]
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", lines[1].rstrip())  # created, to the second


def test_password_prompt_asks_twice_and_never_echoes(dsn, env, db):
    """Typer's hidden prompt, driven through a real terminal."""
    import pty

    ok(["domain", "add", "example.com"], dsn, env)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["PGPASSWORD"] = ADMIN_PASSWORD
        os.execv(PYTHON, [PYTHON, str(ROOT / "runner.py"), "mailbox", "add", "p@example.com", "--dsn", dsn])
    output = b""

    def read_until(marker: bytes):
        nonlocal output
        while marker not in output:
            chunk = os.read(fd, 1024)
            if not chunk:
                raise AssertionError(output)
            output += chunk

    # click prints the prompt text, then getpass switches echo off with TCSAFLUSH (discarding
    # anything typed so far) and prints the trailing space: wait for that space before typing.
    read_until(b"Password for p@example.com: ")
    os.write(fd, b"typed secret\n")
    read_until(b"Repeat for confirmation: ")
    os.write(fd, b"typed secret\n")
    _, status = os.waitpid(pid, 0)
    try:
        while chunk := os.read(fd, 1024):
            output += chunk
    except OSError:
        pass
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert b"typed secret" not in output
    with psycopg.connect(db.info.dsn, autocommit=True) as conn:
        conn.execute("SET ROLE alice")
        assert verified(conn, "p@example.com", "typed secret")


def test_mailbox_add_without_a_terminal_or_password_source_refuses(dsn, env):
    ok(["domain", "add", "example.com"], dsn, env)
    r = mb(["mailbox", "add", "foo@example.com"], dsn, env)
    assert r.exit_code == 1 and "--password-file" in r.stderr
    assert "--password-stdin" in r.stderr and "MAILBOOK_" not in r.stderr, r.stderr


def test_mailbox_add_checks_the_address_before_asking_for_a_password(dsn, env):
    ok(["domain", "add", "example.com"], dsn, env)
    r = mb(["mailbox", "add", "notanaddress"], dsn, env)  # no terminal, no password source
    assert r.exit_code == 1 and "is not an email address" in r.stderr and "password" not in r.stderr, r
    for args, words in ((["mailbox", "add", "foo@nothere.org"], "not hosted here"),
                        (["mailbox", "passwd", "ghost@example.com"], "does not exist")):
        r = mb(args, dsn, env)
        assert r.exit_code == 1 and words in r.stderr and "password" not in r.stderr, r
    # on a terminal: the refusal comes first, no prompt is shown
    import pty
    parent, child = pty.openpty()
    p = subprocess.run([PYTHON, str(ROOT / "runner.py"), "mailbox", "add", "notanaddress", "--dsn", dsn],
                       stdin=child, capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    os.close(child), os.close(parent)
    assert p.returncode == 1 and "is not an email address" in p.stderr, p
    assert "Password" not in p.stdout + p.stderr, p


def test_sql_errors_come_through_as_one_line_and_change_nothing(dsn, env, db):
    ok(["domain", "add", "example.com"], dsn, env)
    before = table_checksums(db)
    cases = [
        (["mailbox", "add", "foo@nothere.org", "--password-stdin"], "x\n", 'domain "nothere.org" is not hosted here (SQLSTATE 23503)'),
        (["mailbox", "add", "bad address", "--password-stdin"], "x\n", "is not an email address"),
        (["mailbox", "add", "foo@example.com", "--maildir", "../etc/", "--password-stdin"], "x\n", '".."'),
        (["mailbox", "add", "foo@example.com", "--password-stdin"], "\n", "no password on standard input"),
        (["domain", "add", "example.com"], None, "already hosted"),
        (["alias", "add", "bar@exmaple.com", "foo@example.com"], None,  # quoted in the README
         """mailbook: domain "exmaple.com" is not hosted here (SQLSTATE 23503); hint: call add_domain('exmaple.com') first\n"""),
        (["mailbox", "remove", "ghost@example.com"], None, "(SQLSTATE P0002)"),
        (["domain", "remove", "nowhere.org"], None, "not hosted"),
    ]
    for args, stdin, words in cases:
        r = mb(args, dsn, env, stdin)
        assert r.exit_code == 1, (args, r)
        assert r.stderr.startswith("mailbook: ") and r.stderr.count("\n") == 1, (args, r)
        assert words in r.stderr, (args, r)
        assert "Traceback" not in r.stdout + r.stderr
    assert table_checksums(db) == before


def test_alias_add_with_one_bad_destination_adds_none(dsn, env, db):
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "pw\n")
    r = mb(["alias", "add", "team@example.com", "foo@example.com", "ghost@example.com"], dsn, env)
    assert r.exit_code == 1 and "ghost@example.com" in r.stderr
    assert json.loads(ok(["alias", "list", "--json"], dsn, env).stdout) == []


def test_sendas_allow_list_who_disallow_and_bad_input_in_one_line(dsn, env):
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "pw\n")
    ok(["alias", "add", "team@example.com", "foo@example.com"], dsn, env)
    # one bad address: no grant at all
    r = mb(["sendas", "allow", "foo@example.com", "info@example.com", "not an address"], dsn, env)
    assert r.exit_code == 1 and "not an address" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert json.loads(ok(["sendas", "list", "--json"], dsn, env).stdout) == []
    r = mb(["sendas", "allow", "ghost@example.com", "info@example.com"], dsn, env)
    assert r.exit_code == 1 and "ghost@example.com" in r.stderr and "Traceback" not in r.stderr
    ok(["sendas", "allow", "Foo@example.com", "Info@example.com", "me@elsewhere.example"], dsn, env)
    assert [(g["login"], g["address"]) for g in json.loads(ok(["sendas", "list", "--json"], dsn, env).stdout)] == [
        ("foo@example.com", "info@example.com"), ("foo@example.com", "me@elsewhere.example")]
    r = mb(["sendas", "allow", "foo@example.com", "info@example.com"], dsn, env)
    assert r.exit_code == 1 and "may already send as" in r.stderr
    assert ok(["sendas", "who", "team@example.com"], dsn, env).stdout.split() == ["foo@example.com"]
    assert ok(["sendas", "who", "INFO@example.com"], dsn, env).stdout.split() == ["foo@example.com"]
    assert "nobody may send as" in ok(["sendas", "who", "bar@example.com"], dsn, env).stdout
    r = mb(["sendas", "who", "no-at-sign"], dsn, env)
    assert r.exit_code == 1 and "no-at-sign" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert "removed 1" in ok(["sendas", "disallow", "foo@example.com", "info@example.com"], dsn, env).stdout
    r = mb(["sendas", "disallow", "foo@example.com", "info@example.com"], dsn, env)
    assert r.exit_code == 1 and "has no send-as grant" in r.stderr
    assert "removed 1" in ok(["sendas", "disallow", "foo@example.com"], dsn, env).stdout
    assert ok(["sendas", "list"], dsn, env).stdout.strip() == "(none)"


def test_mailbox_and_domain_deny_allow_services_and_list_them(dsn, env):
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "pw\n")
    assert "turned off: imap, pop3" in ok(["mailbox", "deny", "foo@example.com", "pop3", "imap"], dsn, env).stdout
    assert json.loads(ok(["mailbox", "list", "--json"], dsn, env).stdout)[0]["services_off"] == ["imap", "pop3"]
    assert "turned off: pop3" in ok(["mailbox", "allow", "foo@example.com", "imap"], dsn, env).stdout
    assert "turned off: sieve" in ok(["domain", "deny", "example.com", "sieve"], dsn, env).stdout
    assert json.loads(ok(["domain", "list", "--json"], dsn, env).stdout)[0]["services_off"] == ["sieve"]
    r = mb(["mailbox", "deny", "ghost@example.com", "pop3"], dsn, env)
    assert r.exit_code == 1 and "ghost@example.com" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    r = mb(["mailbox", "deny", "foo@example.com", "imap", "telnet"], dsn, env)
    assert r.exit_code == 1 and 'unknown service "telnet"' in r.stderr and "22023" in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert json.loads(ok(["mailbox", "list", "--json"], dsn, env).stdout)[0]["services_off"] == ["pop3"]  # no imap


def test_limits_cli_and_import_cap(dsn, env, db, tmp_path):
    """Quota and domain limits through the CLI and an import past a cap writes nothing."""
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "pw\n")
    assert "1000" in ok(["mailbox", "quota", "foo@example.com", "--bytes", "1000", "--messages", "5"], dsn, env).stdout
    listed = json.loads(ok(["mailbox", "list", "--json"], dsn, env).stdout)[0]
    assert (listed["quota_bytes"], listed["quota_messages"]) == (1000, 5)
    r = mb(["mailbox", "quota", "foo@example.com", "--bytes", "0"], dsn, env)
    assert r.exit_code == 1 and "22023" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    ok(["domain", "limits", "example.com", "--mailboxes", "2"], dsn, env)
    assert json.loads(ok(["domain", "list", "--json"], dsn, env).stdout)[0]["max_mailboxes"] == 2
    before = table_checksums(db)
    path = write_csv(tmp_path / "two.csv", [
        {"kind": "mailbox", "address": "bar@example.com", "password": "pw"},
        {"kind": "mailbox", "address": "baz@example.com", "password": "pw"}])
    r = mb(["import", str(path)], dsn, env)
    assert r.exit_code == 1 and 'domain "example.com" allows at most 2 mailbox(es)' in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and table_checksums(db) == before


def test_enable_disable_remove(dsn, env):
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "pw\n")
    assert ok(["mailbox", "disable", "foo@example.com"], dsn, env).stdout.startswith("disabled foo@example.com:")
    assert ok(["mailbox", "enable", "foo@example.com"], dsn, env).stdout == "enabled foo@example.com\n"
    assert ok(["domain", "disable", "example.com"], dsn, env).stdout.startswith("disabled domain example.com:")
    r = mb(["domain", "remove", "example.com"], dsn, env)
    assert r.exit_code == 1, r
    ok(["domain", "remove", "example.com", "--cascade"], dsn, env)
    assert ok(["domain", "list"], dsn, env).stdout.strip() == "(none)"


def test_domain_remove_hints_cascade(dsn, env, db):
    """Refused while mailboxes remain, `domain remove` names its own option (--cascade),
    not the SQL function's argument, on one line, and removes nothing."""
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "pw\n")
    before = table_checksums(db)
    r = mb(["domain", "remove", "Example.COM"], dsn, env)
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1, r
    assert 'domain "example.com" still has 1 mailbox(es)' in r.stderr, r.stderr
    assert "run `mailbook domain remove example.com --cascade`" in r.stderr and "=>" not in r.stderr, r.stderr
    assert table_checksums(db) == before


def test_mailbox_passwd_and_hashed_add(dsn, env, db):
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, "old\n")
    ok(["mailbox", "passwd", "foo@example.com", "--password-stdin"], dsn, env, "new\n")
    db.execute("RESET ROLE")
    h = db.execute("SELECT crypto.crypt('moved', crypto.gen_salt('bf', 4))").fetchone()[0]
    ok(["mailbox", "add", "m@example.com", "--hashed", "--password-stdin"], dsn, env, "$2y$" + h[4:] + "\n")
    with psycopg.connect(db.info.dsn, autocommit=True) as conn:
        conn.execute("SET ROLE alice")
        assert verified(conn, "foo@example.com", "new") and verified(conn, "m@example.com", "moved")


# -- import and export ------------------------------------------------------------------------------

def write_csv(path, rows, columns=COLUMNS):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def test_import_reports_every_bad_row_with_its_line_and_writes_nothing(dsn, env, db, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [
        {"kind": "domain", "address": "example.com"},                                    # line 2: fine
        {"kind": "mailbox", "address": "foo@example.com", "password": "pw"},             # 3: fine
        {"kind": "mailbox", "address": "bar@nothere.org", "password": "pw"},             # 4: domain not hosted
        {"kind": "mailbox", "address": "FOO@example.com", "password": "pw"},             # 5: duplicate of line 3
        {"kind": "mailbox", "address": "x@example.com", "password": "pw", "maildir": "../etc/"},  # 6
        {"kind": "mailbox", "address": "y@example.com"},                                 # 7: no password
        {"kind": "mailbox", "address": "z@example.com", "password_hash": "hunter2"},     # 8: not a hash
        {"kind": "alias", "address": "team@example.com", "destination": "ghost@example.com"},  # 9
        {"kind": "user", "address": "q@example.com"},                                    # 10: bad kind
        {"kind": "domain", "address": "bad domain"},                                     # 11
        {"kind": "mailbox", "address": "w@example.com", "password": "pw", "quota_bytes": "lots"},  # 12
        {"kind": "alias", "address": "nowhere@example.com"},                              # 13: no destination
    ])
    before = table_checksums(db)
    r = mb(["import", str(path)], dsn, env)
    assert r.exit_code == 1
    lines = {int(l.split(":")[1]) for l in r.stderr.splitlines() if l.startswith(str(path))}
    assert lines == {4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, r.stderr
    assert f"{path}:13: an alias needs a destination" in r.stderr
    assert "hunter2" not in r.stderr
    assert "nothing was imported" in r.stderr
    assert table_checksums(db) == before
    db.execute("RESET ROLE")
    assert db.execute("SELECT count(*) FROM import_staging").fetchone() == (0,)


def test_import_reports_a_bad_address_once_and_counts_bad_rows(dsn, env, db, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [
        {"kind": "domain", "address": "example.com"},
        {"kind": "mailbox", "address": "not an address@example.com", "password": "pw"},   # 3: address only
        {"kind": "mailbox", "address": "bad..dots@example.com", "password": "pw", "maildir": "../x/"},  # 4: both
    ])
    r = mb(["import", str(path)], dsn, env)
    assert r.exit_code == 1
    said = [l for l in r.stderr.splitlines() if l.startswith(str(path))]
    assert [l.split(":")[1] for l in said] == ["3", "4", "4"], r.stderr  # a maildir only when typed
    assert "not an address" in said[0] and ".." in said[2]
    assert "2 bad rows (3 problems) in" in r.stderr, r.stderr


def test_import_refused_mid_write(dsn, env, db, tmp_path):
    """Import that a constraint refuses mid write reports every bad row and writes nothing."""
    # every row passes the checks made before writing; the tables' constraints refuse
    # some while the batch is written, and then each bad row is named with its line
    path = write_csv(tmp_path / "late.csv", [
        {"kind": "domain", "address": "example.com"},                                    # line 2: fine
        {"kind": "mailbox", "address": "foo@example.com", "password": "pw"},             # 3: fine
        {"kind": "mailbox", "address": "bar@nothere.org", "password": "pw"},             # 4: domain not hosted
        {"kind": "mailbox", "address": "foo@example.com", "password": "pw2"},            # 5: duplicate of line 3
        {"kind": "mailbox", "address": "x@example.com", "password": "pw", "maildir": "../etc/"},  # 6
        {"kind": "mailbox", "address": "w@example.com", "password": "pw", "quota_bytes": "lots"},  # 7
        {"kind": "alias", "address": "team@example.com", "destination": "foo@example.com"},        # 8: fine
        {"kind": "alias", "address": "team@exmaple.com", "destination": "foo@example.com"},        # 9: typo
    ])
    before = table_checksums(db)
    r = mb(["import", str(path)], dsn, env)
    assert r.exit_code == 1
    lines = {int(l.split(":")[1]) for l in r.stderr.splitlines() if l.startswith(str(path))}
    assert lines == {4, 5, 6, 7, 9}, r.stderr
    assert f'{path}:9: domain "exmaple.com" is not hosted here' in r.stderr
    assert table_checksums(db) == before
    db.execute("RESET ROLE")
    assert db.execute("SELECT count(*) FROM import_staging").fetchone() == (0,)


def test_import_dry_run_checks_and_writes_nothing(dsn, env, db, tmp_path):
    path = write_csv(tmp_path / "ok.csv", [{"kind": "domain", "address": "example.com"}])
    before = table_checksums(db)
    r = ok(["import", str(path), "--dry-run"], dsn, env)
    assert "1 row(s) checked, no problems" in r.stdout
    assert table_checksums(db) == before


def test_import_malformed_csv_is_a_clear_error(dsn, env, tmp_path):
    (tmp_path / "x.csv").write_text("kind,address,colour\ndomain,example.com,blue\n")
    r = mb(["import", str(tmp_path / "x.csv")], dsn, env)
    assert r.exit_code == 1 and "unknown column(s) colour" in r.stderr
    (tmp_path / "y.csv").write_text("kind,address\ndomain,example.com,extra\n")
    r = mb(["import", str(tmp_path / "y.csv")], dsn, env)
    assert r.exit_code == 1 and "line 2" in r.stderr
    r = mb(["import", str(tmp_path / "missing.csv")], dsn, env)
    assert r.exit_code == 1 and "cannot read" in r.stderr


def test_import_line_numbers(dsn, env, db, tmp_path):
    """Import names lines as the file has them CRLF and quoted newlines included."""
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"kind,address,realname,maildir,password\r\n"
                     b"domain,example.com,,,\r\n"                              # line 2
                     b'mailbox,a@example.com,"First\r\nLast",,pw\r\n'         # lines 3-4: control characters
                     b"mailbox,b@example.com,,../b/,pw\r\n"                     # line 5: maildir escapes
                     b"mailbox,c@example.com,,,pw\r\n"                          # line 6: fine
                     b"\r\n\r\n")                                             # blank lines at the end
    before = table_checksums(db)
    r = mb(["import", str(path)], dsn, env)
    assert r.exit_code == 1
    lines = sorted(int(l.split(":")[1]) for l in r.stderr.splitlines() if l.startswith(str(path)))
    assert lines == [4, 5], r.stderr
    assert table_checksums(db) == before


def test_import_encoding_errors(dsn, env, db, tmp_path):
    """Import of a file that is not UTF-8 or holds NUL is one clear error and a BOM is fine."""
    before = table_checksums(db)
    (tmp_path / "latin1.csv").write_bytes("kind,address,realname\ndomain,example.com,Jos\xe9\n".encode("latin-1"))
    r = mb(["import", str(tmp_path / "latin1.csv")], dsn, env)
    assert r.exit_code == 1 and "not UTF-8" in r.stderr and "Traceback" not in r.stderr, r.stderr
    (tmp_path / "nul.csv").write_bytes(b"kind,address\ndomain,example.com\ndomain,exa\x00mple.org\n")
    r = mb(["import", str(tmp_path / "nul.csv")], dsn, env)
    assert r.exit_code == 1 and r.stderr.startswith("mailbook: line 3: ") and "0x00" in r.stderr, r.stderr
    assert table_checksums(db) == before
    # a spreadsheet's UTF-8 with a byte-order mark is UTF-8
    (tmp_path / "bom.csv").write_bytes("kind,address,realname\ndomain,bom.example,\n".encode("utf-8-sig"))
    ok(["import", str(tmp_path / "bom.csv")], dsn, env)


def generated_rows(n_mailboxes: int, hashes: list[str]):
    domains = max(1, n_mailboxes // 1000)
    rows = [{"kind": "domain", "address": f"d{d}.example.com"} for d in range(domains)]
    for i in range(n_mailboxes):
        rows.append({"kind": "mailbox", "address": f"user{i}@d{i % domains}.example.com",
                     "password_hash": hashes[i % len(hashes)], "realname": f"User {i}",
                     "quota_bytes": str(1 << 30) if i % 7 == 0 else "", "active": "false" if i % 50 == 0 else ""})
    for i in range(0, n_mailboxes, 5):
        rows.append({"kind": "alias", "address": f"alias{i}@d{i % domains}.example.com",
                     "destination": f"user{i}@d{i % domains}.example.com"})
        if i % 25 == 0:
            rows.append({"kind": "alias", "address": f"alias{i}@d{i % domains}.example.com",
                         "destination": f"forward{i}@elsewhere.net"})
    return rows


def test_import_10000_mailboxes_then_export_reimport_reproduces_it_exactly(dsn, env, db, cluster, fresh_db, tmp_path):
    db.execute("RESET ROLE")
    hashes = [db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt(%s, crypto.gen_salt('bf', 4))", (f"pw{i}",)).fetchone()[0]
              for i in range(20)]
    rows = generated_rows(10_000, hashes)
    path = write_csv(tmp_path / "big.csv", rows)
    r = ok(["import", str(path)], dsn, env)
    assert f"imported {len(rows)} row(s)" in r.stdout
    assert db.execute("SELECT count(*) FROM users").fetchone() == (10_000,)
    assert db.execute("SELECT count(*) FROM aliases").fetchone() == (2_400,)
    assert db.execute("SELECT count(*) FROM users WHERE NOT active").fetchone() == (200,)
    # a mailadmin may not export: it would hand out every hash
    r = mb(["export", str(tmp_path / "denied.csv")], dsn, env)
    assert r.exit_code == 1 and "permission denied to set role" in r.stderr
    admin_dsn = cluster.dsn(db.info.dbname)
    r = cli(["export", str(tmp_path / "export.csv"), "--dsn", admin_dsn])
    assert r.exit_code == 0, r
    assert stat.S_IMODE((tmp_path / "export.csv").stat().st_mode) == 0o600
    exported = (tmp_path / "export.csv").read_text()
    assert "pw1" not in exported and "{BLF-CRYPT}$2a$04$" in exported
    # into an empty database, migrated the way a DBA would: the same export comes back out
    assert cli(["migrate", "apply", "--dsn", fresh_db]).exit_code == 0
    r = cli(["import", str(tmp_path / "export.csv"), "--dsn", fresh_db])
    assert r.exit_code == 0, r
    again = cli(["export", "-", "--dsn", fresh_db])
    assert again.exit_code == 0, again
    assert again.stdout == exported


TABLE_KEYS = """
SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.conindid
  FROM pg_constraint c
 WHERE (c.conrelid = %(table)s::regclass AND c.contype IN ('p', 'u')) OR c.confrelid = %(table)s::regclass
UNION ALL
SELECT 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indexrelid
  FROM pg_index i WHERE i.indrelid = %(table)s::regclass
 ORDER BY 1, 2"""


def table_keys(db, table):
    """A table's keys, indexes and the foreign keys pointing at it: (definitions, index oids)."""
    rows = db.execute(TABLE_KEYS, {"table": table}).fetchall()
    return [r[:3] for r in rows], {r[3] for r in rows}


def test_initial_load_builds_keys(
        dsn, env, db, tmp_path):
    """An initial load builds users' keys once after the rows and they come back as they were.

    10,000 mailboxes into an empty users: its keys and indexes are set aside and built
    after the rows; the same definitions come back, and they hold (the foreign key from
    send_as included)."""
    db.execute("RESET ROLE")
    definitions, oids = table_keys(db, "users")
    # three indexes, two of them the keys (email, maildir), and the foreign keys of send_as,
    # quota_usage, vacations, last_logins, app_passwords and former_addresses
    assert len(definitions) == 11
    rows = generated_rows(10_000, [db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]])
    rows.append({"kind": "sendas", "address": "info@d0.example.com", "destination": "user0@d0.example.com"})
    ok(["import", str(write_csv(tmp_path / "load.csv", rows))], dsn, env)
    after, new_oids = table_keys(db, "users")
    assert after == definitions and not oids & new_oids  # the same keys, built anew
    assert db.execute("SELECT count(*) FROM users").fetchone() == (10_000,)
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("INSERT INTO users (email, password, maildir) SELECT email, password, 'x/' FROM users LIMIT 1")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("INSERT INTO send_as (login, address) VALUES ('nobody@d0.example.com', 'x@d0.example.com')")
    db.execute("DELETE FROM users WHERE email = 'user0@d0.example.com'")  # its grant goes with it
    assert db.execute("SELECT count(*) FROM send_as").fetchone() == (0,)


def test_initial_load_duplicate(dsn, env, db, tmp_path):
    """An initial load with a mailbox twice names both lines and writes nothing."""
    db.execute("RESET ROLE")
    definitions, oids = table_keys(db, "users")
    before = table_checksums(db)
    rows = generated_rows(10_000, [db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]])
    first = next(i for i, r in enumerate(rows) if r["address"] == "user7@d7.example.com")
    rows.append(dict(rows[first], maildir="elsewhere/user7/"))  # only the key repeats
    path = write_csv(tmp_path / "twice.csv", rows)
    r = mb(["import", str(path)], dsn, env)
    assert r.exit_code == 1, r
    assert (f"twice.csv:{len(rows) + 1}: mailbox \"user7@d7.example.com\" appears more than once in the file"
            f" (first on line {first + 2})") in r.stderr and "1 bad row in" in r.stderr
    assert table_checksums(db) == before
    assert table_keys(db, "users") == (definitions, oids)  # untouched: the set-aside was rolled back


def test_initial_load_aliases(
        dsn, env, db, tmp_path):
    """An initial load of aliases builds their keys after the rows and names a repeated row.

    10,000 aliases into an empty aliases table: the same keys come back, built anew,
    and a row given twice is named by its line while nothing is written."""
    db.execute("RESET ROLE")
    definitions, oids = table_keys(db, "aliases")
    assert len(definitions) == 4  # the primary key (alias, email) and its index; indexes on domain, email
    rows = [{"kind": "domain", "address": "example.com"},
            {"kind": "mailbox", "address": "foo@example.com", "password_hash":
             db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]}]
    rows += [{"kind": "alias", "address": f"a{i}@example.com", "destination": "foo@example.com"} for i in range(10_000)]
    checksums = table_checksums(db)
    twice = write_csv(tmp_path / "twice.csv", rows + [rows[500]])
    r = mb(["import", str(twice)], dsn, env)
    assert r.exit_code == 1, r
    assert (f"twice.csv:{len(rows) + 2}: alias \"a498@example.com -> foo@example.com\" appears more than once"
            f" in the file (first on line 502)") in r.stderr and "1 bad row in" in r.stderr
    assert table_checksums(db) == checksums and table_keys(db, "aliases") == (definitions, oids)
    ok(["import", str(write_csv(tmp_path / "load.csv", rows))], dsn, env)
    after, new_oids = table_keys(db, "aliases")
    assert after == definitions and not oids & new_oids  # the same keys, built anew
    assert db.execute("SELECT count(*) FROM aliases").fetchone() == (10_000,)
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("INSERT INTO aliases (alias, email) VALUES ('a1@example.com', 'foo@example.com')")


def test_initial_load_locks(db, cluster):
    """An initial load locks users until it commits and an import into a populated table does
    not.

    The one thing an initial load costs: nobody reads users until it commits. Into a
    table that has mailboxes, an import goes in row by row and readers carry on."""
    from mailbook.provisioning import bulk
    hash_ = db.execute("SELECT '{BLF-CRYPT}' || crypto.crypt('pw', crypto.gen_salt('bf', 4))").fetchone()[0]

    def import_open(rows):
        """An import whose transaction stays open, as a long one would be mid-way."""
        conn = psycopg.connect(cluster.dsn(db.info.dbname))
        conn.execute("SET ROLE mailadmin")
        out = io.StringIO()
        write = csv.DictWriter(out, fieldnames=COLUMNS)
        write.writeheader()
        write.writerows(rows)
        out.seek(0)
        count, problems = bulk.import_csv(conn, out, dry_run=False)
        assert count == len(rows) and not problems
        return conn

    def can_read():
        with psycopg.connect(cluster.dsn(db.info.dbname), autocommit=True) as reader:
            reader.execute("SET lock_timeout = '500ms'")
            try:
                reader.execute("SELECT count(*) FROM users WHERE email = 'user1@d1.example.com'")
                return True
            except psycopg.errors.LockNotAvailable:
                return False

    initial = import_open(generated_rows(10_000, [hash_]))
    assert not can_read()
    initial.commit()
    initial.close()
    assert can_read()
    more = [{"kind": "mailbox", "address": f"more{i}@d{i % 10}.example.com", "password_hash": hash_}
            for i in range(10_000)]
    populated = import_open(more)
    assert can_read()
    populated.rollback()
    populated.close()


def test_import_plaintext_passwords_are_hashed_at_the_configured_cost(dsn, env, db, tmp_path):
    path = write_csv(tmp_path / "p.csv", [
        {"kind": "domain", "address": "example.com"},
        {"kind": "mailbox", "address": "foo@example.com", "password": "plain secret"},
    ])
    ok(["import", str(path)], dsn, env)
    db.execute("RESET ROLE")
    assert db.execute("SELECT password LIKE '{BLF-CRYPT}$2a$10$%%' FROM users").fetchone() == (True,)
    db.execute("SET ROLE alice")
    assert verified(db, "foo@example.com", "plain secret")


def test_import_from_stdin(dsn, env, db):
    data = "kind,address\ndomain,example.com\n"
    r = mb(["import", "-"], dsn, env, input=data)
    assert r.exit_code == 0, r
    assert json.loads(ok(["domain", "list", "--json"], dsn, env).stdout)[0]["domain"] == "example.com"


# -- service role passwords -------------------------------------------------------------------

@pytest.fixture
def keep_mailreader_password(cluster):
    """Roles are cluster-wide: put mailreader's verifier back for the other tests."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        (saved,) = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'mailreader'").fetchone()
    yield
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        if saved is None:
            conn.execute("ALTER ROLE mailreader PASSWORD NULL")
        else:
            conn.execute(psycopg.sql.SQL("ALTER ROLE mailreader PASSWORD {}").format(psycopg.sql.Literal(saved)))


def test_role_password_rotation(
        cluster, db, tmp_path, keep_mailreader_password):
    """Role password rotation lets mailreader in with the new password only."""
    def reader_login(password):
        with psycopg.connect(host="127.0.0.1", port=cluster.port, dbname=db.info.dbname,
                             user="mailreader", password=password, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM postfix_mailbox_domain('example.com')").fetchone()[0]

    first = tmp_path / "mailreader.pw"
    r = cli(["role", "password", "mailreader", "--generate", str(first), "--dsn", cluster.dsn()])
    assert r.exit_code == 0, r
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    old = first.read_text().strip()
    assert len(old) >= 20 and old not in r.stdout + r.stderr
    assert reader_login(old) == 0
    # the server stores a SCRAM verifier computed on the client, not the password
    (stored,) = db.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'mailreader'").fetchone()
    assert stored.startswith("SCRAM-SHA-256$4096:") and old not in stored

    r = cli(["role", "password", "mailreader", "--password-file", "-", "--dsn", cluster.dsn()],
            input="rotated secret\n")
    assert r.exit_code == 0, r
    assert reader_login("rotated secret") == 0
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        reader_login(old)


def test_role_password_refuses_other_roles_and_an_empty_password(cluster, tmp_path):
    r = cli(["role", "password", "postgres", "--password-file", "-", "--dsn", cluster.dsn()], input="x\n")
    assert r.exit_code != 0 and "mailreader" in r.stderr
    empty = tmp_path / "empty.pw"
    empty.write_text("")
    r = cli(["role", "password", "mailauth", "--password-file", str(empty), "--dsn", cluster.dsn()])
    assert r.exit_code == 1 and r.stderr.strip() == f"mailbook: password file {empty} is empty"


def run_in_terminal(args: list[str], extra_env: dict, timeout: float = 120) -> tuple[int, bytes]:
    """Run `mailbook ARGS` with a real terminal as stdin/stdout; (exit status, output)."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:
        os.environ.update(extra_env)
        os.environ["COLUMNS"] = "100"
        os.execv(PYTHON, [PYTHON, str(ROOT / "runner.py"), *args])
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


def test_import_progress_bar(dsn, env, db, tmp_path):
    """Import shows a progress bar on a terminal and stays quiet in a pipe."""
    rows = [{"kind": "domain", "address": "example.com"}] + [
        {"kind": "alias", "address": f"a{i}@example.com", "destination": f"x{i}@elsewhere.net"} for i in range(3000)]
    path = write_csv(tmp_path / "aliases.csv", rows)
    status, output = run_in_terminal(["import", str(path), "--dry-run", "--dsn", dsn], env)
    assert status == 0, output
    assert b"loading" in output and b"\x1b[" in output  # rich's bar, drawn with escape codes
    assert b"3001 row(s) checked, no problems" in output
    # in a pipe: the result line and nothing else
    r = ok(["import", str(path), "--dry-run"], dsn, env)
    assert r.stdout == "3001 row(s) checked, no problems\n" and r.stderr == ""


# -- the audit log ----------------------------------------------------------------------------

def test_log_who_changed_what(dsn, env, db, tmp_path):
    """Log shows who changed what oldest first filters and never a password."""
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "foo@example.com", "--password-stdin"], dsn, env, input="first secret\n")
    ok(["alias", "add", "info@example.com", "foo@example.com"], dsn, env)
    ok(["mailbox", "passwd", "foo@example.com", "--password-stdin"], dsn, env, input="second secret\n")
    ok(["mailbox", "disable", "foo@example.com"], dsn, env)
    rows = json.loads(ok(["log", "--json"], dsn, env).stdout)
    assert [(r["login"], r["operation"], r["table"], r["key"], r["changed"]) for r in rows] == [
        ("alice", "INSERT", "transports", "example.com", None),
        ("alice", "INSERT", "users", "foo@example.com", None),
        ("alice", "INSERT", "aliases", "info@example.com -> foo@example.com", None),
        ("alice", "UPDATE", "users", "foo@example.com", "password,password_changed"),  # 0215 dates it
        ("alice", "UPDATE", "users", "foo@example.com", "active"),
    ]
    text = ok(["log"], dsn, env).stdout
    assert "secret" not in text and "$2" not in text and "alice" in text
    # filters: by table, by key (case folded like every address), by age; newest N
    assert [r["key"] for r in json.loads(ok(["log", "--json", "--table", "aliases"], dsn, env).stdout)] == \
        ["info@example.com -> foo@example.com"]
    assert len(json.loads(ok(["log", "--json", "--key", "FOO@example.com"], dsn, env).stdout)) == 4
    assert len(json.loads(ok(["log", "--json", "--since", "1 hour"], dsn, env).stdout)) == 5
    assert json.loads(ok(["log", "--json", "--since", "2999-01-01"], dsn, env).stdout) == []
    assert [r["changed"] for r in json.loads(ok(["log", "--json", "--limit", "2"], dsn, env).stdout)] == \
        ["password,password_changed", "active"]
    r = mb(["log", "--since", "last tuesday-ish"], dsn, env)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and "22007" in r.stderr, r

    # an import is logged row by row, in the one statement that writes it
    path = tmp_path / "more.csv"
    path.write_text("kind,address,destination,password,password_hash,realname,maildir,quota_bytes,transport,gid,active\n"
                    + "".join(f"alias,a{i}@example.com,foo@example.com,,,,,,,,true\n" for i in range(500)))
    ok(["import", str(path)], dsn, env)
    assert len(json.loads(ok(["log", "--json", "--table", "aliases", "--limit", "1000"], dsn, env).stdout)) == 501


def test_import_export_round_trip(
        dsn, env, db, cluster, fresh_db, tmp_path):
    """Import and export carry alias domains catch-alls send-as services and caps."""
    good = write_csv(tmp_path / "good.csv", [
        {"kind": "domain", "address": "example.net", "destination": "example.com"},  # before its target: fine
        {"kind": "domain", "address": "example.com", "services_off": "sieve", "max_mailboxes": "5"},
        {"kind": "mailbox", "address": "foo@example.com", "password": "pw", "quota_messages": "7",
         "services_off": "pop3"},
        {"kind": "alias", "address": "@example.com", "destination": "foo@example.com"},  # catch-all
        {"kind": "sendas", "address": "Info@Example.com", "destination": "foo@example.com"},
    ])
    ok(["import", str(good)], dsn, env)
    db.execute("RESET ROLE")
    assert db.execute("SELECT domain, alias_of FROM transports ORDER BY 1").fetchall() == [
        ("example.com", None), ("example.net", "example.com")]
    assert db.execute("SELECT alias, email FROM aliases").fetchall() == [("@example.com", "foo@example.com")]
    assert db.execute("SELECT login, address FROM send_as").fetchall() == [("foo@example.com", "info@example.com")]

    bad = write_csv(tmp_path / "bad.csv", [
        {"kind": "domain", "address": "example.org", "destination": "example.net"},     # 2: target is an alias
        {"kind": "domain", "address": "example.info", "destination": "nowhere.example"},  # 3: target not hosted
        {"kind": "mailbox", "address": "x@example.net", "password": "pw"},             # 4: in an alias domain
        {"kind": "alias", "address": "@example.net", "destination": "foo@example.com"},  # 5: likewise
        {"kind": "alias", "address": "@bad..example", "destination": "foo@example.com"},  # 6: not a domain
        {"kind": "sendas", "address": "info@example.com", "destination": "foo@example.com"},  # 7: granted already
        {"kind": "sendas", "address": "me@elsewhere.example", "destination": "ghost@example.com"},  # 8: no mailbox
        {"kind": "sendas", "address": "not an address", "destination": "foo@example.com"},  # 9
        {"kind": "sendas", "address": "me@elsewhere.example"},                           # 10: for whom?
        {"kind": "sendas", "address": "a@elsewhere.example", "destination": "foo@example.com"},
        {"kind": "sendas", "address": "A@elsewhere.example", "destination": "foo@example.com"},  # 12: repeated
    ])
    before = table_checksums(db)
    r = mb(["import", str(bad)], dsn, env)
    assert r.exit_code == 1
    lines = {int(l.split(":")[1]) for l in r.stderr.splitlines() if l.startswith(str(bad))}
    assert lines == {2, 3, 4, 5, 6, 7, 8, 9, 10, 12}, r.stderr
    assert f'{bad}:8: "ghost@example.com" may send as "me@elsewhere.example" only if it is a mailbox' in r.stderr
    assert f"{bad}:4: domain \"example.net\" is an alias domain; add \"x@example.net\" in \"example.com\" instead" \
        in r.stderr, r.stderr
    assert table_checksums(db) == before

    # an export names the alias domain's target and comes back the same from a fresh database
    exported = cli(["export", "-", "--dsn", cluster.dsn(db.info.dbname)], check=True).stdout
    # the catch-all's "@example.com" leaves with an apostrophe (no spreadsheet formula, 0029)
    assert "domain,example.net,example.com," in exported and "alias,'@example.com,foo@example.com," in exported
    assert "sendas,info@example.com,foo@example.com," in exported
    assert ",true,,sieve,5,," in exported and ",true,7,pop3,,," in exported  # services and caps travel too
    assert cli(["migrate", "apply", "--dsn", fresh_db]).exit_code == 0
    (tmp_path / "export.csv").write_text(exported)
    cli(["import", str(tmp_path / "export.csv"), "--dsn", fresh_db], check=True)
    assert cli(["export", "-", "--dsn", fresh_db], check=True).stdout == exported


def test_import_export_vacations(
        dsn, env, db, cluster, fresh_db, tmp_path):
    """Import and export carry vacation replies byte for byte and bad rows write nothing."""
    body = 'Back on Monday.\r\nUrgent: "ops@example.com"; discard;\n\\ ünïcödé\n'
    good = write_csv(tmp_path / "good.csv", [
        {"kind": "domain", "address": "example.com"},
        {"kind": "mailbox", "address": "foo@example.com", "password": "pw"},
        {"kind": "mailbox", "address": "bar@example.com", "password": "pw"},
        {"kind": "mailbox", "address": "baz@example.com", "password": "pw"},
        # all five columns; a subject a spreadsheet would take for a formula
        {"kind": "vacation", "address": "Foo@example.com", "subject": "=Away", "body": body,
         "starts": "2026-12-20 08:00:00.25+01", "ends": "2027-01-04T00:00:00Z", "days": "3"},
        # only what is required: starts now, never ends, every 7 days
        {"kind": "vacation", "address": "bar@example.com", "subject": "Away", "body": "Gone."},
    ])
    ok(["import", str(good)], dsn, env)
    db.execute("RESET ROLE")
    rows = db.execute("SELECT email, subject, body, starts AT TIME ZONE 'UTC', ends AT TIME ZONE 'UTC', days,"
                      " now() - starts < interval '1 minute' FROM vacations ORDER BY 1").fetchall()
    assert [r[:3] for r in rows] == [("bar@example.com", "Away", "Gone."), ("foo@example.com", "=Away", body)]
    assert str(rows[1][3]) == "2026-12-20 07:00:00.250000" and str(rows[1][4]) == "2027-01-04 00:00:00"
    assert (rows[0][4], rows[0][5], rows[0][6], rows[1][5]) == (None, 7, True, 3)

    # to files: Click's runner would read a CR LF on stdout as LF
    cli(["export", str(tmp_path / "export.csv"), "--dsn", cluster.dsn(db.info.dbname)], check=True)
    exported = (tmp_path / "export.csv").read_bytes()
    vacations = [r for r in csv.DictReader(io.StringIO(exported.decode(), newline="")) if r["kind"] == "vacation"]
    assert [(v["address"], v["subject"], v["starts"], v["ends"], v["days"]) for v in vacations][1] == (
        "foo@example.com", "'=Away", "2026-12-20T07:00:00.25Z", "2027-01-04T00:00:00Z", "3")
    assert vacations[1]["body"] == body  # the line breaks as they were, CR included
    assert cli(["migrate", "apply", "--dsn", fresh_db]).exit_code == 0
    cli(["import", str(tmp_path / "export.csv"), "--dsn", fresh_db], check=True)
    cli(["export", str(tmp_path / "again.csv"), "--dsn", fresh_db], check=True)
    assert (tmp_path / "again.csv").read_bytes() == exported

    # every bad row named by its line (the body's line breaks counted), nothing written
    bad = write_csv(tmp_path / "bad.csv", [
        {"kind": "mailbox", "address": "new@example.com", "password": "pw"},               # 2: fine
        {"kind": "vacation", "address": "new@example.com", "subject": "Away",
         "body": "two\nlines"},                                                       # 3-4: fine (line 4)
        {"kind": "vacation", "address": "foo@example.com", "subject": "Again", "body": "x"},  # 5: has one
        {"kind": "vacation", "address": "ghost@example.com", "subject": "s", "body": "x"},  # 6: no mailbox
        {"kind": "vacation", "address": "baz@example.com", "subject": "", "body": "x"},     # 7: no subject
        {"kind": "vacation", "address": "baz@example.com", "subject": "a\tb", "body": "x"},  # 8: control
        {"kind": "vacation", "address": "baz@example.com", "subject": "s", "body": " "},    # 9: empty body
        {"kind": "vacation", "address": "baz@example.com", "subject": "s", "body": "x",
         "starts": "next tuesday"},                                                      # 10
        {"kind": "vacation", "address": "baz@example.com", "subject": "s", "body": "x",
         "ends": "infinity"},                                                            # 11
        {"kind": "vacation", "address": "baz@example.com", "subject": "s", "body": "x", "days": "0"},  # 12
        {"kind": "vacation", "address": "baz@example.com", "subject": "s", "body": "x", "days": "x"},  # 13
        {"kind": "vacation", "address": "baz@example.com", "subject": "s", "body": "x",
         "starts": "2027-01-02Z", "ends": "2027-01-01Z"},                                # 14
        {"kind": "vacation", "address": "new@example.com", "subject": "s", "body": "x"},  # 15: repeated
    ])
    before = table_checksums(db)
    r = mb(["import", str(bad)], dsn, env)
    assert r.exit_code == 1
    lines = {int(l.split(":")[1]) for l in r.stderr.splitlines() if l.startswith(str(bad))}
    assert lines == {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, r.stderr
    for line, message in [
            (5, 'mailbox "foo@example.com" has a vacation reply already'),
            (6, 'a vacation reply needs the mailbox "ghost@example.com"; add a mailbox row for it'),
            (7, "a vacation subject must not be empty"),
            (8, "a vacation subject must be one line without control characters"),
            (9, "a vacation body must not be empty"),
            (10, 'starts must be a date and time such as 2026-12-24T09:00:00Z, not "next tuesday"'),
            (11, 'ends must be a date and time such as 2026-12-24T09:00:00Z, not "infinity"'),
            (12, 'days must be a number from 1 to 365, not "0"'),
            (13, 'days must be a number from 1 to 365, not "x"'),
            (14, 'a vacation must end after it starts, not "2027-01-01Z" before "2027-01-02Z"'),
            (15, 'vacation "new@example.com" appears more than once in the file (first on line 4)')]:
        assert any(l.startswith(f"{bad}:{line}: {message}") for l in r.stderr.splitlines()), (line, r.stderr)
    assert table_checksums(db) == before


def test_quota_changes_only_the_limit_given(dsn, env):
    """`mailbox quota --messages N` keeps the byte limit (it once lifted a 2,000,000,000-byte
    one), --bytes none removes only the byte limit, and each change prints the limits now."""
    ok(["domain", "add", "example.com"], dsn, env)
    ok(["mailbox", "add", "bar@example.com", "--password-stdin"], dsn, env, "pw\n")

    def limits():
        row = json.loads(ok(["mailbox", "quota", "bar@example.com", "--json"], dsn, env).stdout)[0]
        return row["quota_bytes"], row["quota_messages"]

    first = ok(["mailbox", "quota", "bar@example.com", "--bytes", "2000000000"], dsn, env)
    r = ok(["mailbox", "quota", "bar@example.com", "--messages", "100000"], dsn, env)
    assert limits() == (2000000000, 100000)
    assert first.stdout == "bar@example.com quota now: 2000000000 bytes, no message limit\n", first.stdout
    assert r.stdout == "bar@example.com quota now: 2000000000 bytes, 100000 messages\n", r.stdout
    r = ok(["mailbox", "quota", "bar@example.com", "--bytes", "none"], dsn, env)
    assert r.stdout == "bar@example.com quota now: no byte limit, 100000 messages\n", r.stdout
    assert limits() == (None, 100000)
    r = mb(["mailbox", "quota", "bar@example.com", "--messages", "lots"], dsn, env)
    assert r.exit_code == 1 and "--messages takes a number or none" in r.stderr, r.stderr
    r = mb(["mailbox", "quota", "ghost@example.com", "--messages", "5"], dsn, env)
    assert r.exit_code == 1 and "ghost@example.com" in r.stderr and "P0002" in r.stderr, r.stderr
    assert limits() == (None, 100000)
    ok(["mailbox", "quota", "bar@example.com", "--lift"], dsn, env)
    assert limits() == (None, None)

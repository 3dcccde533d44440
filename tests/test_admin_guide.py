"""The admin guide (docs/admin-guide.md) and the README, held to what they say: every
`mailbook` command line in them parses, and the recipes for migrating from the
tutorial's database and for backup/restore work as written."""

from __future__ import annotations

import re
import shlex
import subprocess

import psycopg
import pytest
import typer.main

from tests.harness.database import table_checksums, verified
from tests.harness.process import ROOT, cli

DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_blocks(path):
    return re.findall(r"```(?:sh|bash)\n(.*?)```", path.read_text(), re.S)


def mailbook_command_lines():
    """(file, words) for each `mailbook …` command in the docs' shell blocks."""
    for path in DOCS:
        for block in shell_blocks(path):
            for line in block.splitlines():
                if not re.search(r"(^|[|&;]\s*)mailbook\s", line.strip()):
                    continue
                lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                words = []
                for token in [*lexer, ";"]:
                    if token in ("|", "||", "&&", ";", "&"):
                        if words and words[0] == "mailbook":
                            yield path.name, words[1:]
                        words = []
                    else:
                        words.append(token)


def test_every_mailbook_command_in_the_docs_exists_with_those_options():
    group = typer.main.get_command(__import__("runner").app)
    seen = 0
    for name, words in mailbook_command_lines():
        command, args, path = group, list(words), ["mailbook"]
        while hasattr(command, "commands") and args and not args[0].startswith("-"):
            path.append(args[0])
            command = command.commands.get(args.pop(0))
            assert command is not None, f"{name}: no command {' '.join(path)}"
        if "--help" in args or "--install-completion" in args:
            continue
        try:
            command.make_context(" ".join(path), args)
        except Exception as exc:  # click's UsageError (Typer vendors click: no import by name)
            if not hasattr(exc, "format_message"):
                raise
            pytest.fail(f"{name}: `{' '.join(['mailbook', *words])}`: {exc.format_message()}")
        seen += 1
    assert seen >= 30  # README + guide; a regex that stopped matching would pass vacuously


# -- migrate from the tutorial's database ---------------------------------------------------

TUTORIAL_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE users (email TEXT NOT NULL, password TEXT NOT NULL, realname TEXT,
                    maildir TEXT NOT NULL, created TIMESTAMP WITH TIME ZONE DEFAULT now(),
                    PRIMARY KEY (email));
CREATE TABLE transports (domain TEXT NOT NULL, gid INTEGER UNIQUE NOT NULL,
                         transport TEXT NOT NULL, PRIMARY KEY (domain));
CREATE TABLE aliases (alias TEXT NOT NULL, email TEXT NOT NULL, PRIMARY KEY (alias));
INSERT INTO transports (domain, gid, transport) VALUES ('example.com', 1000, 'virtual:');
INSERT INTO users (email, password, realname, maildir)
     VALUES ('foo@example.com', crypt('ecnrypted_password', gen_salt('bf', 5)), 'Foo Lastname', 'foo/');
INSERT INTO users (email, password, realname, maildir)
     VALUES ('old@example.com', md5('ecnrypted_password'), 'Old Account', 'old/');
INSERT INTO aliases (alias, email) VALUES ('bar@exmaple.com', 'foo@example.com');
INSERT INTO aliases (alias, email) VALUES ('info@example.com', 'foo@example.com');
"""


@pytest.fixture
def oldmail(cluster):
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS oldmail WITH (FORCE)")
        conn.execute("CREATE DATABASE oldmail")
    with psycopg.connect(cluster.dsn("oldmail"), autocommit=True) as conn:
        conn.execute(TUTORIAL_SCHEMA)
    yield "oldmail"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS oldmail WITH (FORCE)")


def test_tutorial_database_migrates_with_the_guides_query(cluster, oldmail, db, tmp_path):
    guide = (ROOT / "docs" / "admin-guide.md").read_text()
    block = guide.split("<!-- tested: tests/test_admin_guide.py")[1].split("```sh\n")[1].split("```")[0]
    export_sql = block.split("<<'SQL'\n")[1].split("\nSQL\n")[0]
    old_csv = tmp_path / "old.csv"
    psql = str(cluster.bindir / "psql")
    with open(old_csv, "w") as out:
        subprocess.run([psql, "-X", "--csv", "-h", cluster.host, "-p", str(cluster.port), "-U", "postgres",
                        "-d", oldmail, "-f", "-"], input=export_sql, stdout=out, text=True, check=True)
    dsn = cluster.dsn(db.info.dbname)
    before = table_checksums(db)

    r = cli(["import", str(old_csv), "--dry-run", "--dsn", dsn])
    assert r.exit_code == 1
    lines = old_csv.read_text().splitlines()
    bad = {i + 1 for i, line in enumerate(lines) if "old@example.com" in line or "exmaple.com" in line}
    reported = {int(m) for m in re.findall(rf"^{re.escape(str(old_csv))}:(\d+): ", r.stderr, re.M)}
    assert reported == bad and len(bad) == 2, r.stderr
    assert "not hosted" in r.stderr and "not in a recognised form" in r.stderr
    assert table_checksums(db) == before

    # the admin fixes those lines (here: drops them) and imports
    old_csv.write_text("\n".join(line for i, line in enumerate(lines) if i + 1 not in bad) + "\n")
    r = cli(["import", str(old_csv), "--dsn", dsn])
    assert r.exit_code == 0, r
    db.execute("RESET ROLE")
    assert db.execute("SELECT maildir, realname, password LIKE '{BLF-CRYPT}$2a$05$%%' FROM users").fetchall() == [
        ("foo/", "Foo Lastname", True)]
    assert db.execute("SELECT gid FROM transports").fetchall() == [(1000,)]
    assert db.execute("SELECT alias, email FROM aliases").fetchall() == [("info@example.com", "foo@example.com")]
    db.execute("SET ROLE alice")
    assert verified(db, "foo@example.com", "ecnrypted_password")


# -- back up and restore ----------------------------------------------------------------------

def test_guide_backup_and_restore(cluster, db, admin, tmp_path):
    """Backup and restore as documented reproduces the data and the lockdown."""
    admin.execute("SELECT add_domain('example.com')")
    admin.execute("SELECT * FROM add_mailbox('foo@example.com', 'secret', 'Foo')")
    admin.execute("SELECT add_alias('postmaster@example.com', 'foo@example.com')")
    before = table_checksums(admin)
    dump = tmp_path / "mail.dump"
    base = ["-h", cluster.host, "-p", str(cluster.port), "-U", "postgres"]
    subprocess.run([str(cluster.bindir / "pg_dump"), *base, "-Fc", "-d", db.info.dbname, "-f", str(dump)],
                   check=True)

    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS restored WITH (FORCE)")
    try:
        assert cli(["init", "--database", "restored", "--dsn", cluster.dsn()]).exit_code == 0
        subprocess.run([str(cluster.bindir / "pg_restore"), *base, "--single-transaction", "-d", "restored",
                        str(dump)], check=True, capture_output=True)
        acl = "SELECT count(*) FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a" \
              " WHERE d.datname = 'restored' AND a.grantee = 0"
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            public_before = conn.execute(acl).fetchone()[0]
        r = cli(["migrate", "apply", "--dsn", cluster.dsn("restored")])
        assert r.exit_code == 0 and "no pending migrations" in r.stdout, r
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            # pg_restore left PUBLIC's CONNECT and TEMP in place; migrate apply took them back
            assert public_before > 0 and conn.execute(acl).fetchone()[0] == 0
        with psycopg.connect(cluster.dsn("restored"), autocommit=True) as conn:
            assert table_checksums(conn) == before
            conn.execute("SET ROLE alice")
            assert verified(conn, "foo@example.com", "secret")
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS restored WITH (FORCE)")

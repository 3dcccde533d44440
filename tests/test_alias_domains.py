"""Alias domains and catch-all, through a real Postfix: x@example.net reaches
x@example.com when example.net is an alias domain of example.com and x is a mailbox or
alias there, unknown users are still refused at RCPT, and a catch-all takes only the
local parts that are neither a mailbox nor an alias (a disabled mailbox's included)."""

from __future__ import annotations

import psycopg
import pytest

from tests.harness.database import mail_database, migrate
from tests.harness.postfix import Postfix, install_postfix
from tests.harness.process import cli, private_dir, remove, require_program, require_root, run

DB = "aliasdomains"
READER_PW = "reader-pw-alias-domains"


@pytest.fixture(scope="module")
def admin_dsn(cluster):
    with mail_database(cluster, DB, mailreader=READER_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
            conn.execute("SELECT add_mailbox('foo@example.com', 'foo pw foo')")
            conn.execute("SELECT add_mailbox('bar@example.com', 'bar pw bar')")
            conn.execute("SELECT add_mailbox('sleepy@example.com', 'sleepy pw')")
            conn.execute("SELECT set_mailbox_active('sleepy@example.com', false)")
            conn.execute("SELECT add_alias('team@example.com', 'bar@example.com')")
            conn.execute("SELECT add_alias_domain('example.net', 'example.com')")
        yield dsn


def sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute(statement)


@pytest.fixture(scope="module")
def postfix(admin_dsn, cluster):
    require_root()
    root = private_dir("mailbook-aliasdomains-")
    pf = install_postfix(root, cluster, DB, READER_PW)
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()
        remove(root)


def lookup(postfix: Postfix, table: str, key: str) -> str | None:
    r = run([require_program("/usr/sbin/postmap"), "-c", str(postfix.config), "-q", key,
             f"pgsql:{postfix.maps / table}"])
    assert r.stderr == "", r.stderr
    assert r.returncode in (0, 1), r
    return r.stdout.strip() if r.returncode == 0 else None


def test_alias_domain_reach(postfix, admin_dsn):
    """An alias domain reaches the target's mailboxes and aliases and nothing else."""
    assert lookup(postfix, "domains.cf", "example.net") == "example.net"
    assert lookup(postfix, "virtual.cf", "foo@example.net") == "foo@example.com"
    assert lookup(postfix, "virtual.cf", "Team@Example.NET") == "team@example.com"
    assert lookup(postfix, "virtual.cf", "nobody@example.net") is None    # no wildcard
    assert lookup(postfix, "virtual.cf", "sleepy@example.net") is None    # disabled at the target
    assert lookup(postfix, "virtual.cf", "foo@example.com") is None       # the mailbox itself: no rewrite
    assert lookup(postfix, "sender-login.cf", "foo@example.net") == "foo@example.com"
    assert lookup(postfix, "sender-login.cf", "team@example.net") == "bar@example.com"

    postfix.send("foo@example.net", "via-alias-domain")
    postfix.delivered("example.com/foo/", "via-alias-domain")
    postfix.send("team@example.net", "alias-via-alias-domain")
    postfix.delivered("example.com/bar/", "alias-via-alias-domain")
    code, msg = postfix.rcpt("nobody@example.net")
    assert code == 550 and "5.1.1" in msg, msg  # refused at RCPT: no backscatter later

    sql(admin_dsn, "SELECT set_domain_active('example.net', false)")
    try:
        assert lookup(postfix, "domains.cf", "example.net") is None
        assert lookup(postfix, "virtual.cf", "foo@example.net") is None
        # refused at RCPT: 554 relay denied, or 550 while smtpd's resolver still has the
        # domain's old class cached; either way nothing is accepted
        assert postfix.rcpt("foo@example.net")[0] in (550, 554)
    finally:
        sql(admin_dsn, "SELECT set_domain_active('example.net', true)")
    sql(admin_dsn, "SELECT set_domain_active('example.com', false)")
    try:  # a disabled target takes its alias domains with it
        assert lookup(postfix, "domains.cf", "example.net") is None
        assert lookup(postfix, "virtual.cf", "foo@example.net") is None
    finally:
        sql(admin_dsn, "SELECT set_domain_active('example.com', true)")


def test_catch_all_unknown_only(postfix, admin_dsn):
    """A catch-all takes unknown local parts only also through the alias domain."""
    sql(admin_dsn, "SELECT add_alias('@example.com', 'bar@example.com')")
    try:
        assert lookup(postfix, "virtual.cf", "anything@example.com") == "bar@example.com"
        assert lookup(postfix, "virtual.cf", "foo@example.com") is None     # a mailbox keeps its mail
        assert lookup(postfix, "virtual.cf", "team@example.com") == "bar@example.com"  # the alias's own
        assert lookup(postfix, "virtual.cf", "sleepy@example.com") is None  # disabled, not swallowed
        assert lookup(postfix, "virtual.cf", "anything@example.net") == "anything@example.com"
        assert lookup(postfix, "sender-login.cf", "anything@example.com") is None  # grants no sending

        postfix.send("foo@example.com", "mailbox-beside-catch-all")
        postfix.delivered("example.com/foo/", "mailbox-beside-catch-all")
        postfix.send("whoever@example.com", "to-catch-all")
        postfix.delivered("example.com/bar/", "to-catch-all")
        postfix.send("whoever@example.net", "to-catch-all-via-alias-domain")
        postfix.delivered("example.com/bar/", "to-catch-all-via-alias-domain")
        code, msg = postfix.rcpt("sleepy@example.com")
        assert code == 550, msg
        foo_mail = "".join(p.read_text() for p in (postfix.mail / "example.com/foo/new").iterdir())
        assert "to-catch-all" not in foo_mail
    finally:
        sql(admin_dsn, "SELECT remove_alias('@example.com')")
    assert lookup(postfix, "virtual.cf", "anything@example.com") is None


def test_alias_domain_and_catch_all_rules_are_refused_clearly(admin_dsn):
    bad = [
        ("SELECT add_alias_domain('example.org', 'nowhere.example')", "P0002", "not hosted"),
        ("SELECT add_alias_domain('example.org', 'example.net')", "23503", "itself an alias domain"),
        ("SELECT add_alias_domain('example.com', 'example.com')", "22023", "alias of itself"),
        ("SELECT add_alias_domain('example.net', 'example.com')", "23505", 'already an alias of "example.com"'),
        ("SELECT add_domain('example.net')", "23505", "already an alias"),
        ("SELECT add_mailbox('x@example.net', 'pw pw pw')", "23503", "add it in example.com"),
        ("SELECT add_alias('x@example.net', 'foo@example.com')", "23503", "add it in example.com"),
        ("SELECT add_alias('@example.net', 'foo@example.com')", "23503", "add it in example.com"),
        ("SELECT add_alias('@bad..domain', 'foo@example.com')", "22023", "bad..domain"),
        ("SELECT add_alias('team@example.com', '@example.com')", "22023", "@example.com"),
        ("SELECT remove_domain('example.com')", "23503", "1 alias domain(s)"),
    ]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        before = conn.execute("SELECT count(*) FROM transports").fetchone()
        for statement, sqlstate, words in bad:
            with pytest.raises(psycopg.Error) as e:
                conn.execute(statement)
            said = f"{e.value.diag.message_primary}; hint: {e.value.diag.message_hint}"
            assert e.value.sqlstate == sqlstate and words in said, (statement, e.value)
        assert conn.execute("SELECT count(*) FROM transports").fetchone() == before


def test_removing_a_target_with_cascade_takes_its_alias_domains(cluster):
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS aliascascade WITH (FORCE)")
    dsn = migrate(cluster, "aliascascade")
    try:
        r = cli(["domain", "add", "example.com", "--dsn", dsn])
        assert r.exit_code == 0, r
        r = cli(["domain", "add", "Example.NET", "--alias-of", "example.com", "--dsn", dsn])
        assert r.exit_code == 0, r
        r = cli(["domain", "add", "example.org", "--alias-of", "example.com", "--transport", "smtp:[x]", "--dsn", dsn])
        assert r.exit_code == 1 and "no --transport" in r.stderr, r
        listed = cli(["domain", "list", "--json", "--dsn", dsn], check=True)
        assert '"alias_of": "example.com"' in listed.stdout
        r = cli(["domain", "remove", "example.com", "--dsn", dsn])
        assert r.exit_code == 1 and "1 alias domain(s)" in r.stderr, r
        r = cli(["domain", "remove", "example.com", "--cascade", "--dsn", dsn])
        assert r.exit_code == 0, r
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM transports").fetchone() == (0,)
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS aliascascade WITH (FORCE)")

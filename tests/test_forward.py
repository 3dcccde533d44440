"""Forwarding (issue 33, item 7): `mailbook forward set|show|clear` over the alias rows,
through a real Postfix. A forward without a copy sends foo's mail to the destination only,
--keep-copy delivers it to foo's mailbox too (an alias to itself plus the destination),
and clear delivers to foo alone again. Errors are one line and change nothing; a
customer's admin forwards its own domains' addresses only."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.harness.database import mail_database, table_checksums
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, private_dir, remove, require_program, require_root, run

DB = "forwards"
READER_PW = "reader-pw-forwards"


@pytest.fixture(scope="module")
def dsn(cluster):
    with mail_database(cluster, DB, mailreader=READER_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
            conn.execute("SELECT add_domain('example.org')")
            conn.execute("SELECT add_mailbox('foo@example.com', 'foo pw foo')")
            conn.execute("SELECT add_mailbox('bar@example.com', 'bar pw bar')")
            conn.execute("SELECT add_mailbox('boss@example.org', 'boss pw boss')")
        yield dsn


@pytest.fixture(scope="module")
def postfix(dsn, cluster):
    require_root()
    root = private_dir("mailbook-forwards-")
    pf = install_postfix(root, cluster, DB, READER_PW)
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        remove(root)


def forward(*args: str, dsn: str, check: bool = True):
    """`mailbook forward ARGS` on dsn (given as $MAILBOOK_DSN: it may hold a password)."""
    return cli(["forward", *args], env={"MAILBOOK_DSN": dsn}, check=check)


def lookup(postfix, key: str) -> str | None:
    r = run([require_program("/usr/sbin/postmap"), "-c", str(postfix.config), "-q", key,
             f"pgsql:{postfix.maps / 'virtual.cf'}"])
    assert r.returncode in (0, 1) and r.stderr == "", r
    return r.stdout.strip() if r.returncode == 0 else None


def test_forward_keep_copy_then_move(postfix, dsn):
    """--keep-copy delivers to both; set again without it moves the mail; clear restores."""
    r = forward("set", "Foo@example.com", "bar@example.com", "--keep-copy", dsn=dsn)
    assert r.stdout.strip() == "foo@example.com -> bar@example.com (a copy stays in the mailbox)"
    shown = json.loads(forward("show", "foo@example.com", "--json", dsn=dsn).stdout)
    assert shown == [{"address": "foo@example.com", "destinations": ["bar@example.com"], "keep_copy": True}]
    assert sorted(lookup(postfix, "foo@example.com").split(",")) == ["bar@example.com", "foo@example.com"]
    postfix.send("foo@example.com", "fwd-copy")
    postfix.delivered("example.com/foo/", "fwd-copy")
    postfix.delivered("example.com/bar/", "fwd-copy")

    forward("set", "foo@example.com", "bar@example.com", dsn=dsn)
    assert lookup(postfix, "foo@example.com") == "bar@example.com"
    postfix.send("foo@example.com", "fwd-moved")
    postfix.delivered("example.com/bar/", "fwd-moved")
    assert postfix.messages("example.com/foo/", "fwd-moved") == []

    assert "is not forwarded any more" in forward("clear", "foo@example.com", dsn=dsn).stdout
    assert forward("show", "foo@example.com", dsn=dsn).stdout.strip() == "foo@example.com is not forwarded"
    assert lookup(postfix, "foo@example.com") is None
    postfix.send("foo@example.com", "fwd-cleared")
    postfix.delivered("example.com/foo/", "fwd-cleared")


def test_forward_elsewhere_is_an_alias_row(postfix, dsn):
    """A forward to another domain is the same alias row `alias list` shows."""
    forward("set", "foo@example.com", "Someone@Elsewhere.example", dsn=dsn)
    try:
        assert lookup(postfix, "foo@example.com") == "someone@elsewhere.example"
        listed = cli(["alias", "list", "--domain", "example.com", "--dsn", dsn], check=True).stdout
        assert "someone@elsewhere.example" in listed
    finally:
        forward("clear", "foo@example.com", dsn=dsn)


@pytest.mark.parametrize(("args", "message"), [
    (["set", "foo@example.com", "foo@example.com"], "cannot forward to itself"),
    (["set", "list@example.com", "x@elsewhere.example", "--keep-copy"], "is no mailbox"),
    (["set", "foo@example.com", "nobody@example.com"], "no mailbox or alias"),
    (["set", "foo@example.com", "not an address"], "not an address"),
    (["clear", "bar@example.com"], "is not forwarded"),
])
def test_forward_errors_change_nothing(dsn, args, message):
    """Each refusal is one line naming the problem, exit 1, and changes no table."""
    with psycopg.connect(dsn) as conn:
        before = table_checksums(conn)
    r = forward(*args, dsn=dsn, check=False)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and message in r.stderr, r
    with psycopg.connect(dsn) as conn:
        assert table_checksums(conn) == before


def test_scoped_admin_forwards_own_domains(dsn, cluster):
    """A customer's admin of example.com forwards its addresses, not example.org's."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE t_fwd_alice LOGIN PASSWORD 'alice-fwd-pw-for-tests'")
        conn.execute("GRANT maildomainadmin TO t_fwd_alice")
        conn.execute("SELECT grant_domain_admin('t_fwd_alice', 'example.com')")
    alice = f"host=127.0.0.1 port={cluster.port} dbname={DB} user=t_fwd_alice password=alice-fwd-pw-for-tests"
    try:
        forward("set", "foo@example.com", "bar@example.com", "--keep-copy", dsn=alice)
        assert "bar@example.com" in forward("show", "foo@example.com", dsn=alice).stdout
        r = forward("set", "boss@example.org", "x@elsewhere.example", dsn=alice, check=False)
        assert r.exit_code == 1 and "may not manage domain" in r.stderr, r
        forward("clear", "foo@example.com", dsn=alice)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT revoke_domain_admin('t_fwd_alice', 'example.com')")
            conn.execute("DROP ROLE t_fwd_alice")

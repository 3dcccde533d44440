"""Delete with a grace period (issue 33 item 6, migration 0214) through the real Postfix
and the CLI: a mailbox removed with --keep-days is refused at RCPT with 550 like any
unknown address, comes back with `mailbook mailbox restore` (its mail, its aliases) and
receives again; after the window `mailbook maildirs purge` queues and deletes its maildir.
The rules in SQL: tests/pgtap/26_grace_delete.sql; a customer's admin's reach:
tests/test_admin_scopes.py."""

from __future__ import annotations

import psycopg
import pytest

from tests.harness.database import mail_database
from tests.harness.postfix import install_postfix
from tests.harness.process import cli, private_dir, remove, require_root

DB = "grace"
READER_PW = "reader-pw-for-grace"


@pytest.fixture(scope="module")
def root_dir():
    require_root()
    d = private_dir("mailbook-grace-")
    yield d
    remove(d)


@pytest.fixture(scope="module")
def dsn(cluster):
    with mail_database(cluster, DB, mailreader=READER_PW) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            conn.execute("SELECT add_domain('example.com')")
        yield dsn


@pytest.fixture(scope="module")
def postfix(root_dir, cluster, dsn):
    pf = install_postfix(root_dir, cluster, DB, READER_PW)
    try:  # stopped also when the start fails half-way
        pf.start()
        yield pf
    finally:
        pf.stop()


def test_grace_550_then_restore(postfix, dsn):
    """Within the window mail to the mailbox, and to an alias that forwarded to it, is
    refused at RCPT with 550 5.1.1 by the real Postfix; the address cannot be taken by a
    new mailbox (one line naming it and the date); after `mailbox restore` the old mail is
    still there and new mail to both addresses is delivered again."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox('keep@example.com', 'keep secret pw')")
        conn.execute("SELECT add_alias('sales@example.com', 'keep@example.com')")
    postfix.send("keep@example.com", "before-removal")
    postfix.delivered("example.com/keep/", "before-removal")

    r = cli(["mailbox", "remove", "keep@example.com", "--keep-days", "30", "--dsn", dsn], check=True)
    assert "keep@example.com can be restored until 2" in r.stdout and "removed keep@example.com" in r.stdout
    for address in ("keep@example.com", "sales@example.com"):
        code, msg = postfix.rcpt(address)
        assert code == 550 and "5.1.1" in msg, (address, code, msg)
    listed = cli(["mailbox", "removed", "--json", "--dsn", dsn], check=True).stdout
    assert '"email": "keep@example.com"' in listed and '"restorable": true' in listed

    pw = postfix.root.parent / "new.pw"
    pw.write_text("another secret pw\n")
    taken = cli(["mailbox", "add", "keep@example.com", "--password-file", str(pw), "--dsn", dsn])
    assert taken.exit_code == 1 and taken.stderr.count("\n") == 1, taken
    assert '"keep@example.com" belongs to a mailbox removed with a grace period' in taken.stderr
    assert "reused after 2" in taken.stderr

    r = cli(["mailbox", "restore", "keep@example.com", "--dsn", dsn], check=True)
    assert r.stdout == "restored keep@example.com (maildir example.com/keep/)\n"
    postfix.send("keep@example.com", "after-restore")
    postfix.send("sales@example.com", "alias-after-restore")
    postfix.delivered("example.com/keep/", "after-restore")
    postfix.delivered("example.com/keep/", "alias-after-restore")
    assert postfix.messages("example.com/keep/", "before-removal"), "the old mail is kept"
    again = cli(["mailbox", "restore", "keep@example.com", "--dsn", dsn])
    assert again.exit_code == 1 and 'no removed mailbox "keep@example.com" can be restored' in again.stderr


def test_grace_expiry_purges(postfix, dsn, cluster):
    """While restorable, `maildirs purge` leaves the maildir alone; once the window has
    ended, `purge --dry-run` says it would queue it, `purge` queues and deletes it in one
    run (the admin's one cron line), and a restore is refused."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox('gone@example.com', 'gone secret pw')")
    postfix.send("gone@example.com", "to-be-purged")
    postfix.delivered("example.com/gone/", "to-be-purged")
    cli(["mailbox", "remove", "gone@example.com", "--keep-days", "1", "--dsn", dsn], check=True)
    base = ["maildirs", "purge", "--base", str(postfix.mail), "--dsn", dsn]

    r = cli(base, check=True)
    assert "gone" not in r.stdout and (postfix.mail / "example.com/gone").is_dir(), r.stdout

    with psycopg.connect(dsn, autocommit=True) as conn:  # as if a day had passed
        conn.execute("UPDATE removed_mailboxes SET removed = now() - interval '2 days', purge_after = now() - interval '1 second'")
    dry = cli([*base, "--dry-run"], check=True)
    assert "would queue example.com/gone/ (gone@example.com): its grace period ended" in dry.stdout
    assert (postfix.mail / "example.com/gone").is_dir()
    r = cli(base, check=True)
    assert "queued example.com/gone/ (gone@example.com): its grace period ended" in r.stdout
    assert "removed example.com/gone/ (gone@example.com)" in r.stdout
    assert not (postfix.mail / "example.com/gone").exists()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM removed_mailboxes").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM maildir_purge_queue").fetchone() == (0,)
    late = cli(["mailbox", "restore", "gone@example.com", "--dsn", dsn])
    assert late.exit_code == 1 and late.stderr.count("\n") == 1, late


def test_grace_race(dsn):
    """A mailbox added with a maildir inside one being removed with a grace period in a
    concurrent, not yet committed transaction waits for it (the lock row of the first path
    segment, as in 0106), then is refused with 23P01: the nesting rule holds across
    sessions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_mailbox('racer@example.com', 'racer secret pw')")
    with psycopg.connect(dsn) as remover, psycopg.connect(dsn, autocommit=True) as adder:
        remover.execute("SELECT remove_mailbox('racer@example.com', 30)")  # open transaction
        adder.execute("SET lock_timeout = '1s'")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # it waits for the removal
            adder.execute("SELECT add_mailbox('spy@example.com', 'spy secret pw', NULL, 'example.com/racer/.Archive/')")
        remover.commit()
        with pytest.raises(psycopg.errors.ExclusionViolation, match='of the removed mailbox "racer@example.com"'):
            adder.execute("SELECT add_mailbox('spy@example.com', 'spy secret pw', NULL, 'example.com/racer/.Archive/')")
        adder.execute("SELECT restore_mailbox('racer@example.com')")

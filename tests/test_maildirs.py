"""`mailbook maildirs purge`: a removed mailbox's maildir is queued in the database and
deleted from disk only inside the base, only if it belongs to the vmail uid and no
mailbox uses it, and never through a symbolic link. Real directories, real owners (the
tests run as root, as the purge does)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.harness.database import ADMIN_PASSWORD
from tests.harness.process import cli, require_root

VMAIL_UID = pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def dsn(db, cluster):
    require_root("the maildir purge tests")
    return f"host=127.0.0.1 port={cluster.port} dbname={db.info.dbname} user=alice"


def mb(args, dsn, input=None):
    return cli([*args, "--dsn", dsn], input=input, env={"PGPASSWORD": ADMIN_PASSWORD})


def ok(args, dsn, input=None):
    r = mb(args, dsn, input)
    assert r.exit_code == 0, r
    return r


@pytest.fixture
def base(tmp_path) -> Path:
    """A mail base owned by the vmail user, as Postfix's virtual(8) leaves it."""
    b = tmp_path / "mail"
    b.mkdir()
    os.chown(b, VMAIL_UID, -1)
    return b


def maildir(base: Path, rel: str, owner: int = VMAIL_UID) -> Path:
    """A maildir with a message in it, as delivery creates one."""
    path = base / rel
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (path / "new" / "1.mail").write_text("Subject: kept until purged\n\nhello\n")
    for d in [*path.parents, path, *path.rglob("*")]:
        if d.is_relative_to(base) and d != base:
            os.chown(d, owner, -1)
    return path


def add(dsn: str, *addresses: str) -> None:
    for a in addresses:
        ok(["mailbox", "add", a, "--password-stdin"], dsn, "pw pw pw\n")


def test_removed_maildir_purged(dsn, base):
    """A removed mailbox's maildir is listed then purged and the rest stays."""
    ok(["domain", "add", "example.com"], dsn)
    add(dsn, "foo@example.com", "bar@example.com")
    foo, bar = maildir(base, "example.com/foo/"), maildir(base, "example.com/bar/")
    assert "nothing queued" in ok(["maildirs", "purge", "--base", str(base)], dsn).stdout
    ok(["mailbox", "remove", "foo@example.com"], dsn)
    assert "example.com/foo/" in ok(["maildirs", "list"], dsn).stdout
    r = ok(["maildirs", "purge", "--base", str(base), "--dry-run"], dsn)
    assert "would remove example.com/foo/ (foo@example.com)" in r.stdout and foo.is_dir()
    r = ok(["maildirs", "purge", "--base", str(base)], dsn)
    assert "removed example.com/foo/ (foo@example.com)" in r.stdout
    assert not foo.exists() and (bar / "new" / "1.mail").exists() and (base / "example.com").is_dir()
    assert "nothing queued" in ok(["maildirs", "purge", "--base", str(base)], dsn).stdout


def test_a_mailbox_added_again_takes_its_maildir_back(dsn, base):
    ok(["domain", "add", "example.com"], dsn)
    add(dsn, "foo@example.com")
    foo = maildir(base, "example.com/foo/")
    ok(["mailbox", "remove", "foo@example.com"], dsn)
    add(dsn, "foo@example.com")                               # same default maildir
    assert "nothing queued" in ok(["maildirs", "purge", "--base", str(base)], dsn).stdout
    assert (foo / "new" / "1.mail").exists()


def test_domain_removal_queues_maildirs(dsn, base):
    """Removing a domain queues every maildir and a missing one is just forgotten."""
    ok(["domain", "add", "example.org"], dsn)
    add(dsn, "a@example.org", "b@example.org")
    a = maildir(base, "example.org/a/")                       # b never received mail
    ok(["domain", "remove", "example.org", "--cascade"], dsn)
    r = ok(["maildirs", "purge", "--base", str(base)], dsn)
    assert "removed example.org/a/" in r.stdout and "forgotten example.org/b/" in r.stdout, r.stdout
    assert not a.exists()


def test_purge_never_follows_links(dsn, base, tmp_path):
    """Symlinks other owners and outside targets are never followed or deleted."""
    ok(["domain", "add", "example.com"], dsn)
    ok(["domain", "add", "example.net"], dsn)
    add(dsn, "link@example.com", "root@example.com", "inner@example.com", "domlink@example.net")
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("must survive")
    (base / "example.com").mkdir()
    os.chown(base / "example.com", VMAIL_UID, -1)
    os.symlink(outside, base / "example.com" / "link")         # the maildir itself is a symlink
    maildir(base, "example.com/root/", owner=0)                # not the vmail user's
    inner = maildir(base, "example.com/inner/")
    os.symlink(outside, inner / "cur" / "escape")              # a symlink inside a maildir
    os.symlink(base / "example.com", base / "example.net")     # a parent directory is a symlink
    for a in ("link@example.com", "root@example.com", "inner@example.com", "domlink@example.net"):
        ok(["mailbox", "remove", a], dsn)
    r = mb(["maildirs", "purge", "--base", str(base)], dsn)
    assert r.exit_code == 1 and "3 maildir(s) kept" in r.stderr, r
    assert "kept example.com/link/ (link@example.com): it is a symlink" in r.stdout
    assert "kept example.com/root/ (root@example.com): it belongs to uid 0" in r.stdout
    assert "kept example.net/domlink/ (domlink@example.net): a parent directory is a symlink" in r.stdout
    assert "removed example.com/inner/" in r.stdout
    assert (outside / "keep.txt").read_text() == "must survive"   # the inner link went, not its target
    assert not inner.exists() and (base / "example.com" / "root" / "new" / "1.mail").exists()
    listed = ok(["maildirs", "list"], dsn).stdout                  # the kept ones stay queued
    assert all(p in listed for p in ("example.com/link/", "example.com/root/", "example.net/domlink/"))
    ok(["maildirs", "forget", "example.com/root/"], dsn)
    r = mb(["maildirs", "forget", "example.com/root/"], dsn)
    assert r.exit_code == 1 and "P0002" in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_bad_base_is_one_clear_line(dsn, base, tmp_path):
    os.symlink(base, tmp_path / "via-link")
    for bad in (tmp_path / "nowhere", tmp_path / "via-link"):
        r = mb(["maildirs", "purge", "--base", str(bad)], dsn)
        assert r.exit_code == 1 and str(bad) in r.stderr and len(r.stderr.splitlines()) == 1, r

"""The harness stops what it started, also when a start fails half-way: a daemon that does
not come up must not leave the ones before it running (ports, clusters, files in /var/tmp)."""

from __future__ import annotations

import os
from contextlib import ExitStack

import psycopg
import pytest

from tests.harness import load
from tests.harness.database import migrated_cluster
from tests.harness.peers import copy_tree_keeping_links
from tests.harness.process import private_dir, remove, started


class Daemon:
    def __init__(self, fails: bool = False):
        self.fails, self.calls = fails, []

    def start(self) -> None:
        self.calls.append("start")
        if self.fails:
            raise AssertionError("did not start")

    def stop(self) -> None:
        self.calls.append("stop")


def test_failed_start_stops_all():
    """A daemon whose start fails is stopped, and so is every daemon started before it."""
    first, second, never = Daemon(), Daemon(fails=True), Daemon()
    with pytest.raises(AssertionError), ExitStack() as stop:
        for daemon in (first, second, never):
            started(stop, daemon)
    assert first.calls == ["start", "stop"] and second.calls == ["start", "stop"] and never.calls == []


def test_failed_setup_destroys_cluster():
    """migrated_cluster() destroys its PostgreSQL when a step after the start fails (here:
    a password for a role that does not exist)."""
    root = private_dir("mailbook-harness-")
    try:
        with pytest.raises(psycopg.errors.UndefinedObject), migrated_cluster(root / "pg", durable=False,
                                                                               no_such_role="pw"):
            pass
        assert not (root / "pg").exists()
    finally:
        remove(root)



def processes_under(root) -> dict[int, str]:
    """{pid: command} of each process whose working directory or command line is under
    root (PostgreSQL's postmaster runs in its data directory, Postfix's master in its
    queue, PgBouncer and Dovecot name their files on the command line); a directory
    removed since reads "... (deleted)", which still starts with root."""
    found = {}
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
        if cwd.startswith(str(root)) or str(root) in cmdline:
            found[pid] = cmdline.strip()
    return found


def test_failed_dovecot_stops_the_stack(monkeypatch):
    """A Dovecot that refuses its configuration fails outage_stack() (test_outage.py's
    fixture) with Dovecot's own message, and leaves none of the PostgreSQL, PgBouncer
    and Postfix started before it running. (Until the harness writes Dovecot 2.4's
    configuration, Debian 13's Dovecot refuses line 1 instead: the same proof.)"""
    seen = {}
    install = load.install_dovecot

    def refused(root, *args, **kwargs):
        dovecot = install(root, *args, **kwargs)
        config = dovecot.config
        dovecot.config = lambda: config() + "no_such_setting = yes\n"  # unknown to 2.3 and 2.4
        seen["root"], seen["running"] = root, processes_under(root)
        return dovecot

    monkeypatch.setattr(load, "install_dovecot", refused)
    # Dovecot's refusal: doveconf names the first line it rejects (here no_such_setting)
    with pytest.raises(AssertionError, match="Fatal: Error in configuration file"), \
            load.outage_stack("mailbook-harness-stack-"):
        pytest.fail("the stack started with a Dovecot that refuses its configuration")
    running = " ".join(seen["running"].values())
    assert "postgres" in running and "pgbouncer" in running and "master" in running, seen["running"]
    assert processes_under(seen["root"]) == {}


def test_copy_keeps_relative_links(tmp_path):
    """copy_tree_keeping_links (the move-in tests' copy of PostfixAdmin) keeps each link
    reaching what it reached: Debian 13's lib/smarty/libs -> ../../../php/smarty4 kind
    (relative, out of the tree) as an absolute link, one inside the tree and an absolute
    one as they were."""
    share = tmp_path / "share"
    (share / "php" / "smarty4").mkdir(parents=True)
    (share / "php" / "smarty4" / "Smarty.class.php").write_text("<?php\n")
    tree = share / "postfixadmin"
    (tree / "lib" / "smarty").mkdir(parents=True)
    (tree / "lib" / "smarty" / "libs").symlink_to("../../../php/smarty4")
    (tree / "public" / "users").mkdir(parents=True)
    (tree / "public" / "users" / "password-change.php").write_text("<?php\n")
    (tree / "public" / "password-change.php").symlink_to("users/password-change.php")
    (tree / "config.inc.php").symlink_to("/etc/postfixadmin/config.inc.php")
    copy = tmp_path / "elsewhere" / "postfixadmin"
    copy_tree_keeping_links(tree, copy)
    assert (copy / "lib" / "smarty" / "libs" / "Smarty.class.php").read_text() == "<?php\n"
    assert os.readlink(copy / "lib" / "smarty" / "libs") == str(share / "php" / "smarty4")
    assert os.readlink(copy / "public" / "password-change.php") == "users/password-change.php"
    assert os.readlink(copy / "config.inc.php") == "/etc/postfixadmin/config.inc.php"

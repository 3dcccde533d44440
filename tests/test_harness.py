"""The harness stops what it started, also when a start fails half-way: a daemon that does
not come up must not leave the ones before it running (ports, clusters, files in /var/tmp)."""

from __future__ import annotations

from contextlib import ExitStack

import psycopg
import pytest

from tests.harness.database import migrated_cluster
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

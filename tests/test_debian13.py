"""Debian 13 "trixie" beside this machine's Debian 12 (issue 30): the demo, the SQL on
PostgreSQL 17 and every real-daemon test file (Postfix 3.10, Dovecot 2.4 with LMTP, quota
and Sieve, PgBouncer, Roundcube, the move-in peers, Patroni 4, the outages) pass in a
Debian 13 root that scripts/debian13.sh builds with debootstrap (cached) and equips with
`scripts/install.sh --test`, as a new user would.

The run goes on beside the rest of the suite (tests/harness/debian13.py, started by
conftest once this file is collected); these checks come last and read its results. A root
that cannot be built fails them; nothing skips.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import debian13


@pytest.fixture(scope="module")
def finished():
    rc = debian13.wait()
    return rc, debian13.results()


def test_demo_runs_on_debian13(finished):
    """scripts/demo.sh on Debian 13 with PostgreSQL 17 and Dovecot 2.4, then --stop."""
    out = debian13.demo_log()
    assert re.match(r"13\.\d+\n17\n2\.4\.", out), out[:300] + debian13.log_tail()
    assert "started a new private PostgreSQL cluster" in out, out[-4000:]
    assert re.search(r"mailboxes\.cf\s+virtual_mailbox_maps\s+foo@example\.com\s+-> example\.com/foo/\n", out), out
    assert re.search(r"virtual\.cf\s+virtual_alias_maps\s+postmaster@example\.com\s+-> foo@example\.com\n", out), out
    assert "installing Debian packages" not in out  # install.sh found everything: no apt per demo


@pytest.mark.parametrize("file", debian13.FILES)
def test_passes_on_debian13(finished, file):
    """Every test of the file passed in the Debian 13 root (none failed, none skipped)."""
    rc, results = finished
    cases = results.get(file, [])
    assert cases, f"{file}: no result from the Debian 13 run (exit {rc}):\n{debian13.log_tail()}"
    bad = [f"{name}: {outcome} {message}" for name, outcome, message in cases if outcome != "passed"]
    assert not bad, f"{file} on Debian 13:\n" + "\n".join(bad)

"""Every benchmark script runs to its end: a smoke run of each at its smallest size, its
reports written to a temporary directory (the committed results stay as they are).

No timing is asserted: the figures of a run this small mean nothing. What is proven is
that the default benchmark run (scripts/bench.sh) and the others still complete against
the current schema and roles (issue 35: bench.sh crashed for a release because a bare
crypt() ran as mailadmin after pgcrypto moved to schema crypto). Needs root (Postfix,
Dovecot, PostfixAdmin's PHP and Patroni run as in the benchmarks themselves).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.harness.benchsmoke import RUNS, result


def test_every_benchmark_script_is_smoke_tested():
    """A new benchmark module gets its smoke run here (postfixadmin.py and common.py are
    parts of the others, not scripts)."""
    scripts = {p.stem for p in (Path(__file__).parents[1] / "benchmarks").glob("*.py")} - {"__init__", "common", "postfixadmin"}
    assert scripts == {module for module, _, _ in RUNS}


@pytest.mark.parametrize("module, args, reports", RUNS, ids=[r[0] for r in RUNS])
def test_benchmark_runs_to_the_end(module, args, reports):
    """The script exits 0 and writes its reports, each one not empty (JSON that parses).
    The runs go in the background from the session's start (tests/harness/benchsmoke.py)."""
    if os.geteuid() != 0:
        pytest.fail("the benchmark smoke runs need root (Postfix, Dovecot, Patroni), as CI has")
    rc, stdout, stderr, out = result(module)
    assert rc == 0, f"benchmarks.{module} {' '.join(args)} exited {rc}:\n{stdout[-2000:]}\n{stderr[-4000:]}"
    for name in reports:
        report = out / name
        assert report.is_file() and report.stat().st_size > 0, f"{module} wrote no {name}: {sorted(os.listdir(out))}"
        if name.endswith(".json"):
            assert json.loads(report.read_text())


def test_logins_benchmark_proves_cache_and_last_login():
    """What the logins benchmark's ratios rest on, from its own report of the smoke run
    (tests/harness/benchsmoke.py: 2 rounds, 2 users, 6 logins, --last-login): every timed
    login of each cached Dovecot was answered from the auth cache (its auth process's
    counters), and last-login recording wrote a row per mailbox at the timed logins; the
    load average is recorded. No timing asserted."""
    if os.geteuid() != 0:
        pytest.fail("the benchmark smoke runs need root (Dovecot), as CI has")
    rc, stdout, stderr, out = result("logins")
    assert rc == 0, f"benchmarks.logins exited {rc}:\n{stdout[-2000:]}\n{stderr[-4000:]}"
    report = json.loads((out / "logins.json").read_text())
    assert report["cache_hits"] == {name: {"hits": 2 * 2 * 6, "lookups": 2 * 2 * 6}
                                    for name in ("mailbook, cache", "lmtp, cache", "lmtp, cache, last login")}
    assert report["last_logins_rows"] == 2
    assert all(len(pairs) == 2 for runs in report["load"].values() for pairs in runs.values())
    assert set(report["last_login_ratio"]) == {"6"}

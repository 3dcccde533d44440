"""The admin guide followed verbatim on a fresh Debian 12 and a fresh Debian 13 (issue 31):
the commands of every section marked `<!-- guide-run N -->` in docs/admin-guide.md and
docs/operations.md (First install, the wiring of Postfix and Dovecot, domains, users,
LMTP delivery, `mailbook dovecot follow` as a service), each ```sh block and each
`apt-get install ...` the prose names, in order, in one root shell, in a throwaway copy of a
pristine `debootstrap --variant=minbase` root with its own network namespace
(scripts/fresh-root.sh, tests/harness/guide.py). Then, on the server it built: mail to root
stays local, a quota change counts at the next RCPT with the shipped auth cache, a user's
Sieve script files mail, `mailbook doctor` and `doctor --live` pass, and users log in to send on
587 (STARTTLS) and 465 (TLS) and only as themselves (tests/harness/guide_checks.py).

What differs from a real machine, and only that: there is no systemd (PID 1 is not systemd
here or in CI), so `systemctl` is a shim (tests/harness/guide-systemctl) that maps the
guide's `systemctl reload|restart|start|enable --now UNIT` to the daemons' own commands
(pg_ctlcluster, postfix, dovecot/doveadm, a unit file's ExecStart in the background), and a
policy-rc.d lets apt start what it installs through the packages' init.d scripts, as systemd
would. The admin's answers: Internet Site to Postfix's question, debconf's defaults otherwise
(DEBIAN_FRONTEND=noninteractive), apt's
"[Y/n]" y, and one password at every password prompt (a terminal: the run is on a pty).

Both runs start at collection (tests/conftest.py), beside the host's tests; logs in
test-artifacts/guide-bookworm.log and guide-trixie.log, the generated scripts beside them.
"""

from __future__ import annotations

import re

import pytest

from tests.harness import guide

SUITES = list(guide.SUITES)


def _failure(suite: str) -> str:
    log = guide.log_text(suite)
    failed = re.findall(rf"^{guide.FAILED} .*$", log, re.M)
    return (failed[-1] if failed else "no GUIDE-FAILED line") + "\n--- log tail ---\n" + log[-5000:]


@pytest.fixture(scope="module")
def guide_runs():
    """Each release's run, ended (started at collection; at most an hour)."""
    return {suite: guide.wait(suite) for suite in SUITES}


def test_guide_sections_are_marked():
    """The runner follows the sections the guide marks, in their order, and finds commands in each."""
    marked = [(n, name, heading) for n, name, heading, _ in guide.sections()]
    assert [n for n, *_ in marked] == sorted({n for n, *_ in marked}), marked   # no number twice
    headings = [heading for _, _, heading in marked]
    for wanted in ("First install", "Wiring up Postfix and Dovecot", "Add users", "Dovecot's authentication cache",
                   "Submission and TLS: users send on 587 and 465", "Check the running mail stack"):
        assert wanted in headings, headings
    where = {w.split(",")[0] for w, _ in guide.steps()}
    assert len(where) == len(marked)   # every marked section gave at least one step
    assert any("apt-get install postfix" in body for _, body in guide.steps())


@pytest.mark.parametrize("suite", SUITES)
def test_guide_runs_verbatim(guide_runs, suite):
    """Every command of the marked sections exits 0 on a fresh machine of that release."""
    log = guide.log_text(suite)
    assert guide.DONE in log, _failure(suite)


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("check", ["local_mail", "quota_at_next_rcpt", "sieve_filter", "doctor", "submission"])
def test_guide_server_works(guide_runs, suite, check):
    """On the server the guide built: tests/harness/guide_checks.py's check of that name."""
    assert guide.DONE in guide.log_text(suite), _failure(suite)
    result = guide.results(suite).get(check)
    assert result is not None, f"no result for {check}\n" + guide.log_text(suite)[-3000:]
    assert result["ok"], result["detail"]

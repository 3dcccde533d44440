"""Debian 13 "trixie" (issue 30, first step): what works on PostgreSQL 17 and Python 3.13,
proven in a Debian 13 root that scripts/debian13.sh builds (once, cached) with debootstrap.

Inside it, as a new user would: `scripts/demo.sh` and `scripts/demo.sh --stop`, then the
PostgreSQL-only test files. The Dovecot half is issue 30's main work and is not run here.
A root that cannot be built fails these tests; nothing skips.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "debian13.sh"

# PostgreSQL-only test files run there (a selection: the whole set that passes takes ~8 min).
# Also passing unchanged, left out for time: test_admin_guide, test_benchmark_results,
# test_change_password, test_docs_links, test_doctor, test_fuzz, test_maildirs, test_packaging, test_private_files,
# test_demo (but its fresh-clone test: the copied tree has no .git).
POSTGRESQL_ONLY = [
    "tests/test_pgtap.py", "tests/test_sql_api.py", "tests/test_migrate_cli.py",
    "tests/test_baseline.py", "tests/test_hba.py", "tests/test_concurrency.py",
    "tests/test_privilege_matrix.py", "tests/test_security.py", "tests/test_stored_text.py",
    "tests/test_query_plans.py", "tests/test_sql_api_docs.py"
]
# Known failures, each named (issue 30's list): not skipped silently, deselected here only.
DESELECT = [
    # imports `crypt`, which Python 3.13 removed
    "tests/test_sql_api.py::test_a_sha_crypt_hash_is_taken_exactly_when_dovecot_verifies_it",
]
# Not PostgreSQL-only (fail in the root, which has no Postfix/Dovecot/PgBouncer yet): every file
# starting Postfix, Dovecot, PgBouncer, Roundcube, Patroni or the move-in peers, and
# test_restore/test_standby (Dovecot), test_alias_domains, test_compiled_maps,
# test_hostile_admin, test_maps_follow, test_quota_usage_bounds, test_relay_domains,
# test_service_allow_list (Postfix or Dovecot fixtures); test_admin_cli (`--help` reflow on 3.13).

def in_debian13(*cmd: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), "run", "--", *cmd], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, cwd=ROOT)


def test_demo_runs_on_debian13_with_postgresql_17():
    r = in_debian13("bash", "-c", "cat /etc/debian_version; ls /usr/lib/postgresql; "
                    "scripts/demo.sh && scripts/demo.sh --stop")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert re.match(r"13\.\d+\n17\n", r.stdout), r.stdout[:200]
    assert "started a new private PostgreSQL cluster" in r.stdout, out[-4000:]
    assert re.search(r"mailboxes\.cf\s+virtual_mailbox_maps\s+foo@example\.com\s+-> example\.com/foo/\n",
                     r.stdout), r.stdout
    assert re.search(r"virtual\.cf\s+virtual_alias_maps\s+postmaster@example\.com\s+-> foo@example\.com\n",
                     r.stdout), r.stdout
    assert "installing Debian packages" not in out  # install.sh found everything: no apt per demo


def test_postgresql_only_tests_pass_on_debian13():
    r = in_debian13(".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *POSTGRESQL_ONLY,
                    *(f"--deselect={d}" for d in DESELECT))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert re.search(r"\d+ passed", r.stdout) and " failed" not in r.stdout, out[-6000:]

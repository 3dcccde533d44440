"""The Debian 13 run beside the rest (issue 30): scripts/debian13.sh runs the demo and the
real-daemon test files in a Debian 13 root (PostgreSQL 17, Postfix 3.10, Dovecot 2.4,
Python 3.13) while this machine's own tests run. conftest starts it once the session has
collected tests/test_debian13.py and puts that file's checks last; they read its results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "debian13.sh"
ROOT = Path(os.environ.get("MAILBOOK_TRIXIE_ROOT", "/var/cache/mailbook/trixie"))
INSIDE = ROOT / "srv" / "mailbook"          # where debian13.sh copies this work tree
LOG = REPO / "test-artifacts" / "debian13.log"
JUNIT = "test-artifacts/debian13-junit.xml"  # relative to the tree inside
DEMO_LOG = "test-artifacts/debian13-demo.log"

# Run there: the demo, the SQL on PostgreSQL 17, and every file that starts a daemon:
# Postfix, Dovecot (LMTP, quota, Sieve), PgBouncer, Roundcube, the move-in peers, Patroni,
# and the outage tests.
FILES = [
    "tests/test_pgtap.py", "tests/test_sql_api.py", "tests/test_migrate_cli.py", "tests/test_doctor.py",
    "tests/test_postfix_dovecot.py", "tests/test_dovecot_stock_conf.py", "tests/test_lmtp_delivery.py",
    "tests/test_submission.py",
    "tests/test_vacation_text.py", "tests/test_quota_usage_bounds.py", "tests/test_service_allow_list.py",
    "tests/test_dovecot_auth_cache.py", "tests/test_outage.py", "tests/test_restore.py", "tests/test_standby.py",
    "tests/test_hostile_admin.py", "tests/test_compiled_maps.py", "tests/test_maps_follow.py",
    "tests/test_pgbouncer_install.py", "tests/test_roundcube.py", "tests/test_patroni.py",
    "tests/test_import_from_postfixadmin.py", "tests/test_import_from_vmm.py",
    "tests/test_dovecot_follow.py", "tests/test_postconf_merge.py", "tests/test_harness.py",
    "tests/test_doctor_live.py", "tests/test_submission_tls.py", "tests/test_dovecot_install_rerun.py",
    "tests/test_admin_scopes.py", "tests/test_resellers.py", "tests/test_dkim.py", "tests/test_dns.py",
    "tests/test_last_login.py", "tests/test_app_passwords.py", "tests/test_forward.py", "tests/test_login_networks.py",
    "tests/test_grace_delete.py", "tests/test_password_expiry.py", "tests/test_rename.py",
    "tests/test_admin_cli.py::test_help_reflows",   # Python 3.13's docstrings
]

_run: subprocess.Popen | None = None


def command() -> list[str]:
    inner = (f"mkdir -p test-artifacts; rm -f {JUNIT} {DEMO_LOG}; "
             f"{{ cat /etc/debian_version; ls /usr/lib/postgresql; dovecot --version; "
             f"scripts/demo.sh && scripts/demo.sh --stop; }} > {DEMO_LOG} 2>&1; "
             f".venv/bin/python -m pytest -q -p no:cacheprovider --junitxml={JUNIT} {' '.join(FILES)}")
    return [str(SCRIPT), "run", "--", "bash", "-c", inner]


def start() -> None:
    """Start the run in the background (once), its output in test-artifacts/debian13.log."""
    global _run
    if _run is not None:
        return
    LOG.parent.mkdir(exist_ok=True)
    with open(LOG, "w") as log:
        _run = subprocess.Popen(command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=REPO, start_new_session=True)


def wait(timeout: float = 3600) -> int:
    """Its exit status, once it has ended."""
    start()
    return _run.wait(timeout=timeout)


def stop() -> None:
    """End it if it still runs: debian13.sh's trap kills everything in the root and unmounts."""
    if _run is not None and _run.poll() is None:
        os.killpg(_run.pid, signal.SIGTERM)
        try:
            _run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(_run.pid, signal.SIGKILL)
            _run.wait()


def log_tail(chars: int = 6000) -> str:
    return LOG.read_text(errors="replace")[-chars:] if LOG.exists() else ""


def demo_log() -> str:
    path = INSIDE / DEMO_LOG
    return path.read_text(errors="replace") if path.exists() else ""


def results() -> dict[str, list[tuple[str, str, str]]]:
    """Per test file: (test name, outcome, message) for every test the run reported."""
    path = INSIDE / JUNIT
    out: dict[str, list[tuple[str, str, str]]] = {f.split("::")[0]: [] for f in FILES}
    if not path.exists():
        return out
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        file = "/".join(module[:2]) + ".py" if len(module) >= 2 else ""
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome, message = tag, (el.get("message") or "")[:500]
                break
        out.setdefault(file, []).append((case.get("name", ""), outcome, message))
    for node in [f for f in FILES if "::" in f]:  # a single test: its own entry
        name = node.split("::", 1)[1]
        out[node] = [c for c in out.get(node.split("::")[0], []) if c[0] == name or c[0].startswith(name + "[")]
    return out

"""The benchmark smoke runs beside the rest of the suite: each benchmark script at its
smallest size, one after another, in a background process that conftest starts once the
session has collected tests/test_benchmark_smoke.py's runs (it puts them last; they read
the results). Much of the suite waits on daemons (an outage held for a minute, a Dovecot
starting), and the smoke runs (about 9 minutes end to end) use that idle time instead of
adding to the critical path of CI.

    python -m tests.harness.benchsmoke DIR MODULE...   # what the background process runs

Each module's run leaves DIR/<module>/: out/ (its reports), stdout, stderr and, last, rc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.harness.process import ROOT, private_dir, remove

# (module, arguments, the reports it writes to --out)
RUNS = [
    ("run", ["--mailboxes", "200,1000", "--samples", "60"], ["results.json", "results.md"]),
    ("import_compare", ["--mailboxes", "2000", "--rounds", "1", "--baseline", "HEAD"],
     ["import-compare.json", "import-compare.md"]),
    ("movein", ["--mailboxes", "200"], ["movein.json", "movein.md"]),
    ("patroni", ["--calls", "3", "--mailboxes", "200"], ["patroni.json", "patroni.md"]),
    ("e2e", ["--rounds", "1", "--scale", "0.01"], ["e2e.json", "e2e.md"]),
    ("delivery", ["--rounds", "1", "--scale", "0.01"], ["delivery.json", "delivery.md"]),
    # with --last-login: test_logins_benchmark_proves_cache_and_last_login reads its report
    ("logins", ["--rounds", "2", "--users", "2", "--logins", "6", "--costs", "6", "--clients", "2", "--last-login"],
     ["logins.json", "logins.md"]),
    ("lookup_compare", ["--rounds", "1", "--scale", "0.01", "--baseline", "HEAD"],
     ["lookup-compare.json", "lookup-compare.md"]),
    # the speed runs only: the equivalence step verifies 100,000 keys through postmap (7 min
    # here under load); tests/test_compiled_maps.py verifies compile against the database
    ("compiled", ["--rounds", "1", "--scale", "0.01", "--skip-equivalence"], ["compiled-speed.json"]),
    ("follow", ["--seconds", "3"], ["follow.json", "follow.md"]),
]
TIMEOUT = 600  # seconds for one module's run
DATA_SHARE = "0.05"  # MAILBOOK_BENCH_DATA: the e2e data's smallest share (harness/data.py)

_run: subprocess.Popen | None = None
_dir: Path | None = None


def module_of(test_name: str) -> str | None:
    """The benchmark module whose run a test of tests/test_benchmark_smoke.py reads:
    test_benchmark_runs_to_the_end[e2e] reads e2e's; test_logins_benchmark_... logins'."""
    if test_name.startswith("test_benchmark_runs_to_the_end["):
        return test_name.removeprefix("test_benchmark_runs_to_the_end[").removesuffix("]")
    modules = [m for m, _, _ in RUNS if test_name.startswith(f"test_{m}_benchmark_")]
    return modules[0] if modules else None


def start(modules: list[str]) -> None:
    """Start the runs of these modules in the background (once, and only as root: they run
    Postfix, Dovecot and Patroni; the tests fail with the reason otherwise)."""
    global _run, _dir
    if _run is not None or os.geteuid() != 0 or not modules:
        return
    _dir = private_dir("mailbook-bench-smoke-")
    with open(_dir / "runner.log", "w") as log:
        _run = subprocess.Popen([sys.executable, "-m", "tests.harness.benchsmoke", str(_dir), *modules], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                # a shell's background job ignores SIGINT, and so would its children: stop() relies on it
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def result(module: str) -> tuple[int, str, str, Path]:
    """(exit code, stdout, stderr, its --out directory) of module's run, once it ended."""
    start([module])
    assert _run is not None and _dir is not None
    done = _dir / module / "rc"
    deadline = time.monotonic() + TIMEOUT * len(RUNS) + 60
    while not done.exists():
        if _run.poll() is not None and not done.exists():
            log = (_dir / "runner.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"the smoke runner ended ({_run.returncode}) before {module}'s run:\n{log}")
        assert time.monotonic() < deadline, f"no result for {module} in time"
        time.sleep(1)
    here = _dir / module
    return (int(done.read_text()), (here / "stdout").read_text(errors="replace"),
            (here / "stderr").read_text(errors="replace"), here / "out")


def stop() -> None:
    """End the runner if it still runs (SIGINT: the running script's finally stops what it
    started, as after Ctrl-C), then remove its directory."""
    global _run, _dir
    if _run is not None and _run.poll() is None:
        for sig, wait in ((signal.SIGINT, 120), (signal.SIGTERM, 30), (signal.SIGKILL, None)):
            try:
                os.killpg(_run.pid, sig)
                _run.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                break
    if _dir is not None:
        remove(_dir)
    _run = _dir = None


def main(directory: Path, modules: list[str]) -> None:
    env = {**os.environ, "MAILBOOK_BENCH_DATA": DATA_SHARE}
    for module, args, _ in RUNS:
        if module not in modules:
            continue
        here = directory / module
        here.mkdir()
        with open(here / "stdout", "w") as out, open(here / "stderr", "w") as err:
            try:
                rc = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args, "--out", str(here / "out")],
                                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    timeout=TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                err.write(f"\nbenchmarks.{module} ran over {TIMEOUT} s\n")
                rc = 124
        (here / "rc.tmp").write_text(str(rc))
        (here / "rc.tmp").rename(here / "rc")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])

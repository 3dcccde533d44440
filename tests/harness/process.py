"""Process helpers shared by the tests and the benchmarks: run a program, require one,
require root, a private directory for daemons' files, and `mailbook` itself in-process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from typer.testing import CliRunner

try:
    from pytest import fail
except ImportError:  # the benchmarks' environment (scripts/install.sh --bench) has no pytest
    def fail(reason: str) -> None:
        raise SystemExit(reason)

ROOT = Path(__file__).resolve().parent.parent.parent  # the checkout
PYTHON = sys.executable


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


def require_program(name: str) -> str:
    """The path of a program the tests need; fails (never skips) when it is missing."""
    path = shutil.which(name) or (name if os.path.exists(name) else None)
    if not path:
        fail(f"{name} is not installed; run the test command from the README (scripts/test.sh)")
    return path


def require_root(what: str = "the Postfix and Dovecot tests") -> None:
    if os.geteuid() != 0:
        fail(f"{what} must run as root (scripts/test.sh under CI does)")


def private_dir(prefix: str) -> Path:
    """A directory of its own under /var/tmp (Postfix only logs to files below /var),
    readable by the daemons' users."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    os.chmod(path, 0o755)
    return path


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def daemon_root(prefix: str, what: str = "the Postfix and Dovecot tests") -> Iterator[Path]:
    """require_root(what), then a private_dir(prefix) for the daemons' files, removed
    afterwards whatever happened."""
    require_root(what)
    path = private_dir(prefix)
    try:
        yield path
    finally:
        remove(path)


class Result:
    def __init__(self, exit_code: int, stdout: str, stderr: str):
        self.exit_code, self.stdout, self.stderr = exit_code, stdout, stderr

    def __repr__(self):
        return f"<exit {self.exit_code}\nstdout: {self.stdout}\nstderr: {self.stderr}>"


def cli(args: list[str], input: str | None = None, env: dict | None = None, check: bool = False) -> Result:
    """Run `mailbook ARGS` in-process, as Typer's CliRunner does."""
    from runner import app

    runner = CliRunner()
    r = runner.invoke(app, args, input=input, env=env, catch_exceptions=False)
    result = Result(r.exit_code, r.stdout, r.stderr)
    if check:
        assert r.exit_code == 0, result
    return result


def keep_generated(path: Path, live: str, regenerate: str, start: str | None = None, end: str | None = None) -> None:
    """A generated part of a committed file (the whole file, or what lies between the
    marker lines start and end) must equal what the code prints now (live). After an
    intended change, MAILBOOK_WRITE_EXPECTED=1 writes live in; regenerate names the test
    to run so, for the failure message."""
    text = path.read_text()
    head, tail = "", ""
    if start is not None:
        head, mark, rest = text.partition(start)
        assert mark, f"{path.name} lost its marker line {start!r}"
        head += mark
        text, mark, tail = rest.partition(end) if end is not None else (rest, "", "")
        assert end is None or mark, f"{path.name} lost its marker line {end!r}"
        tail = mark + tail
    if os.environ.get("MAILBOOK_WRITE_EXPECTED") == "1":
        path.write_text(head + live + tail)
        text = live
    assert text == live, (f"{path.relative_to(ROOT)} is out of date: regenerate it with"
                          f" MAILBOOK_WRITE_EXPECTED=1 .venv/bin/python -m pytest -q {regenerate}")


def started(stop: ExitStack, daemon):
    """daemon.start() with its stop() put on stop first, so that a start that fails
    half-way is stopped as well as everything started before it; returns daemon."""
    stop.callback(daemon.stop)
    daemon.start()
    return daemon


def wait_for(predicate, what: str, timeout: float = 20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def listening(proc: subprocess.Popen, port: int, name: str, log_text, timeout: float = 20) -> None:
    """Wait until a daemon started as our child (proc) accepts TCP on 127.0.0.1:port;
    AssertionError with its log (log_text()) if it exits first or does not listen in time."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited {proc.returncode}: {log_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{name} did not listen on {port}: {log_text()}")


def end(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """Stop a daemon started as our child: SIGTERM, then SIGKILL after timeout seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

"""A private PgBouncer, installed by `mailbook pgbouncer install`, between the daemons and
a private PostgreSQL; it runs as the unprivileged postgres user."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from mailbook.demo.cluster import PrivateCluster, free_port

from .process import cli, require_program, run


class PgBouncer:
    def __init__(self, root: Path, server: PrivateCluster):
        self.root, self.server = root, server
        self.port = free_port()
        self.ini = root / "pgbouncer.ini"
        self.binary = require_program("/usr/sbin/pgbouncer")

    def install_and_start(self, reader_pw: Path, auth_pw: Path) -> None:
        self.root.mkdir()
        shutil.chown(self.root, "postgres", "postgres")  # its log and pid file go here
        cli(["pgbouncer", "install", "--dest", str(self.root), "--server-port", str(self.server.port),
             "--listen-port", str(self.port), "--reader-password-file", str(reader_pw),
             "--auth-password-file", str(auth_pw), "--logfile", str(self.root / "pgbouncer.log"),
             "--pidfile", str(self.root / "pgbouncer.pid")], check=True)
        r = run(["runuser", "-u", "postgres", "--", self.binary, "-d", str(self.ini)])
        assert r.returncode == 0, r.stderr + self.log()

    def stop(self) -> None:
        pid = self.root / "pgbouncer.pid"
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGTERM)

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

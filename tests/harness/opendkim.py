"""A private OpenDKIM (Debian's opendkim, with libopendbx1-pgsql) reading its keys from the
mail database, configured by `mailbook dkim install`, listening on a loopback port of its
own. Started in the foreground as the test's own process; stop() ends that process only."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mailbook.demo.cluster import free_port
from mailbook.files import write_private

from .process import cli, end, listening, require_program


class OpenDKIM:
    def __init__(self, root: Path, cluster, dbname: str, password: str, postfix_config: Path | None = None):
        self.root, self.port = root, free_port()
        self.config = root / "opendkim.conf"
        self.opendkim = require_program("/usr/sbin/opendkim")
        self.process: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)
        pw = root / "maildkim.pw"
        write_private(pw, password + "\n")
        args = ["dkim", "install", "--config", str(self.config), "--port", str(cluster.port), "--dbname", dbname,
                "--socket", f"inet:{self.port}@127.0.0.1", "--password-file", str(pw)]
        if postfix_config is not None:
            args += ["--config-dir", str(postfix_config)]
        self.install = cli(args, check=True)  # what the admin sees: the file written, the postconf lines

    def postconf(self) -> dict[str, str]:
        """The settings of the printed `postconf -e 'NAME = VALUE'` lines."""
        out = {}
        for line in self.install.stdout.splitlines():
            if " -e '" in line:
                name, value = line.split(" -e '", 1)[1].rstrip("'").split(" = ", 1)
                out[name] = value
        return out

    def start(self) -> None:
        log = open(self.root / "opendkim.log", "ab")
        # -f: foreground, our child; -P: a pid file of its own (the config's is the system's)
        self.process = subprocess.Popen([self.opendkim, "-f", "-x", str(self.config), "-P", str(self.root / "pid")],
                                        stdout=log, stderr=log)
        listening(self.process, self.port, "opendkim", self.log_text)

    def stop(self) -> None:
        end(self.process)

    def log_text(self) -> str:
        path = self.root / "opendkim.log"
        return path.read_text(errors="replace") if path.exists() else ""

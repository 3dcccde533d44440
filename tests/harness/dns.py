"""A private DNS server on loopback (Debian's unbound, `scripts/install.sh --test`) that
serves test zones from local-data lines, the zone-file lines `mailbook dns` prints. It
runs in the foreground as the test's own process, on a port of its own, as root without
chroot (nothing of the system's unbound is read or started); stop() ends that process
only. serve() replaces the zones: it rewrites the configuration and restarts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from mailbook.demo.cluster import free_port

from .process import end, listening, private_dir, remove, require_program, started


class Unbound:
    def __init__(self, root: Path, zones: dict[str, list[str]] | None = None):
        self.root, self.port = root, free_port()
        self.unbound = require_program("/usr/sbin/unbound")
        self.config = root / "unbound.conf"
        self.process: subprocess.Popen | None = None
        self.zones = zones or {}
        root.mkdir(parents=True, exist_ok=True)

    @property
    def address(self) -> str:
        """What --resolver takes."""
        return f"127.0.0.1:{self.port}"

    def write_config(self) -> None:
        lines = [
            "server:",
            "    interface: 127.0.0.1", f"    port: {self.port}", "    do-ip6: no",
            "    do-daemonize: no", '    username: ""', '    chroot: ""', f'    directory: "{self.root}"',
            f'    pidfile: "{self.root / "unbound.pid"}"', "    use-syslog: no", f'    logfile: "{self.root / "unbound.log"}"',
            "    verbosity: 1", "    access-control: 127.0.0.0/8 allow",
            '    module-config: "iterator"',   # no DNSSEC validation, no trust anchor to fetch
            "    do-not-query-localhost: yes",
        ]
        for zone, data in self.zones.items():
            # static: a name or type not listed is NXDOMAIN / no data, never asked of the internet
            lines.append(f'    local-zone: "{zone}." static')
            for line in data:
                assert "'" not in line, line
                lines.append(f"    local-data: '{line}'")
        lines += ["remote-control:", "    control-enable: no", ""]
        self.config.write_text("\n".join(lines))

    def start(self) -> None:
        self.write_config()
        check = subprocess.run(["unbound-checkconf", str(self.config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = open(self.root / "unbound.out", "ab")
        self.process = subprocess.Popen([self.unbound, "-d", "-c", str(self.config)], stdout=log, stderr=log)
        listening(self.process, self.port, "unbound", self.log_text)

    def serve(self, zones: dict[str, list[str]]) -> None:
        """Serve these zones from now on (each zone: its local-data lines)."""
        self.stop()
        self.zones = zones
        self.start()

    def stop(self) -> None:
        end(self.process)

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in (self.root / "unbound.log", self.root / "unbound.out")
                       if p.exists())


@contextmanager
def unbound_server(prefix: str) -> Iterator[Unbound]:
    """A started Unbound in a private_dir(prefix), serving no zone until serve(); stopped
    and its directory removed afterwards, also after a failed start."""
    root = private_dir(prefix)
    with ExitStack() as stop:
        stop.callback(remove, root)
        yield started(stop, Unbound(root / "unbound"))

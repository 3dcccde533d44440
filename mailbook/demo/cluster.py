"""A private PostgreSQL cluster in a directory: for `mailbook demo` and the test suite.

PostgreSQL refuses to run as root, so when we are root the server runs as the
unprivileged `postgres` OS user (Debian's package creates it) and owns the directory.
The superuser is always called `postgres`; it may log in without a password only over
the Unix socket, which lives in the cluster's private directory. Everything else, the
service roles included, authenticates with scram-sha-256 over the socket or loopback TCP.
"""

from __future__ import annotations

import errno
import glob
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from mailbook import Failure
from mailbook.files import write_atomically

SUPERUSER = "postgres"
# `postgresql` brings the release's server with its contrib modules (pgcrypto); postgresql-contrib
# is only a virtual package on Debian 13, which apt would "install" on every run
PACKAGE_HINT = "install PostgreSQL's server (Debian: apt-get install postgresql)"


def find_bindir() -> Path:
    """Where initdb and pg_ctl live: pg_config, then PATH, then Debian's layout."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates += [Path(p) for p in reversed(versions)]
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    raise Failure(f"no PostgreSQL server binaries (initdb, pg_ctl) found; {PACKAGE_HINT}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateCluster:
    """A cluster whose data, socket and log live under `root`."""

    def __init__(self, root: Path, port: int | None = None, durable: bool = True,
                 settings: list[str] | None = None):
        self.root = Path(root).resolve()
        self.settings = settings or []  # more postgresql.conf lines, e.g. for benchmarks
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "postgresql.log"
        self.port_file = self.root / "port"
        self.durable = durable
        self._port = port
        self.bindir = find_bindir()
        self.os_user = SUPERUSER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name

    # -- what clients need ----------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            try:  # never through a link the OS user left (ELOOP): that is no port file
                with os.fdopen(os.open(self.port_file, os.O_RDONLY | os.O_NOFOLLOW)) as f:
                    self._port = int(f.read())
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ELOOP):
                    raise
        if self._port is None:
            self._port = free_port()
        return self._port

    @property
    def host(self) -> str:
        return str(self.socket_dir)

    def dsn(self, dbname: str = "postgres", user: str = SUPERUSER) -> str:
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}"

    # -- life cycle -------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/")

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialised():
            return False
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(self.os_user)
            except KeyError:
                raise Failure(f"running as root needs the unprivileged OS user {self.os_user}; "
                              f"{PACKAGE_HINT}") from None
            shutil.chown(self.root, self.os_user, self.os_user)
            probe = subprocess.run(["runuser", "-u", self.os_user, "--", "test", "-w", str(self.root)])
            if probe.returncode != 0:
                raise Failure(f"the {self.os_user} OS user cannot reach {self.root} (a parent "
                              f"directory is private); choose a data directory under /var/tmp or /srv")
        out = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                        "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256",
                        check=False)
        if out.returncode != 0:
            raise Failure(f"initdb failed: {out.stderr.strip().splitlines()[-1:]}")
        # written as root into a directory the OS user owns: never through a link it planted
        owner = pwd.getpwnam(self.os_user) if os.geteuid() == 0 else None
        ids = {"uid": owner.pw_uid, "gid": owner.pw_gid} if owner else {}
        write_atomically(self.data / "pg_hba.conf",
            "# mailbook private cluster: only the superuser may skip the password, and only\n"
            "# over the Unix socket in the cluster's private directory\n"
            f"local all {SUPERUSER} trust\n"
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n", 0o600, **ids)
        settings = [
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.socket_dir}'",
            "password_encryption = 'scram-sha-256'",
            "max_connections = 200",
        ]
        if not self.durable:  # tests: a crash loses nothing we care about
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        settings += self.settings
        conf = self.data / "postgresql.conf"
        with os.fdopen(os.open(conf, os.O_RDONLY | os.O_NOFOLLOW)) as f:
            initdb_conf = f.read()
        write_atomically(conf, initdb_conf + "\n# mailbook\n" + "\n".join(settings) + "\n", 0o600, **ids)

    def start(self) -> None:
        if not self.initialised():
            self.init()
        if self.running():
            return
        port = self.port
        out = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                        "-o", f"-p {port}", "start", check=False)
        if out.returncode != 0:
            tail = self.log.read_text().strip().splitlines()[-3:] if self.log.exists() else []
            raise Failure(f"PostgreSQL did not start: {' '.join(tail) or out.stderr.strip()}")
        write_atomically(self.port_file, str(port), 0o644)

    def stop(self) -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-l", str(self.log),
                  "-o", f"-p {self.port}", "restart")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

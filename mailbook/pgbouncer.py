"""PgBouncer between the mail daemons and PostgreSQL: pgbouncer/pgbouncer.ini with its
connection lines filled in, and the auth file naming the two service roles."""

from __future__ import annotations

import re
from pathlib import Path

from mailbook import Failure, data_dir
from mailbook.database.connlines import Target

SERVICE_ROLES = ("mailreader", "mailauth")


def _set(text: str, key: str, value: str) -> str:
    """Replace the one `key = ...` line (an ini setting) with `key = value`."""
    new, n = re.subn(rf"^{re.escape(key)}[ \t]*=.*$", lambda _: f"{key} = {value}", text, flags=re.M)
    assert n == 1, f"pgbouncer.ini template has {n} {key} lines"
    return new


def _plain(value: str, what: str) -> str:
    if not value or any(c in value for c in " '\"\\=\n\r\t;#"):
        raise Failure(f"{what} must be a plain name or path without spaces or quotes, not {value!r}")
    return value


def pgbouncer_files(dest: Path, server_host: str, server_port: int, dbname: str,
                    listen_port: int, passwords: dict[str, str],
                    logfile: str, pidfile: str) -> dict[Path, str]:
    """{path: text} for pgbouncer.ini and userlist.txt in dest."""
    for what, port in (("--server-port", server_port), ("--listen-port", listen_port)):
        if not 0 < port < 65536:
            raise Failure(f"{what} must be a TCP port (1-65535), not {port}")
    ini = (data_dir("pgbouncer") / "pgbouncer.ini").read_text()
    target = Target(((_plain(server_host, "--server-host"), server_port),), _plain(dbname, "--dbname")).pgbouncer()
    ini = re.sub(r"^mail[ \t]*=.*$", lambda _: f"{dbname} = {target}", ini, count=1, flags=re.M)
    ini = _set(ini, "listen_port", str(listen_port))
    ini = _set(ini, "auth_file", str(dest / "userlist.txt"))
    ini = _set(ini, "logfile", _plain(logfile, "--logfile"))
    ini = _set(ini, "pidfile", _plain(pidfile, "--pidfile"))
    users = "".join(f'"{role}" "{_quote(pw)}"\n' for role, pw in passwords.items())
    return {dest / "pgbouncer.ini": ini, dest / "userlist.txt": users}


def _quote(password: str) -> str:
    """userlist.txt quoting: the value sits in double quotes, which are doubled."""
    if any(c in password for c in "\n\r\0"):
        raise Failure("a password for userlist.txt cannot contain a line break or NUL byte")
    return password.replace('"', '""')

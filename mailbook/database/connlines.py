"""The connection lines every installer writes, built in one place: where the daemon
connects (the primary first, then any standbys), the database, the role and its password,
formatted as each reader takes them: the connection lines of Postfix's pgsql: map files,
a libpq connection string (Dovecot's `connect =`), PgBouncer's [databases] target, and
Roundcube's PDO DSN."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.conninfo import make_conninfo

from mailbook import Failure


def servers(host: str, port: int, standbys: list[str] | None = None) -> tuple[tuple[str, int], ...]:
    """(host, port) of the server, then of each --standby given as HOST:PORT."""
    out = [(host, port)]
    for value in standbys or []:
        name, _, number = value.rpartition(":")
        if not name or not number.isdigit() or not 0 < int(number) < 65536 or any(c in name for c in " ,'\\"):
            raise Failure(f"--standby must be HOST:PORT, e.g. 192.0.2.2:5432, not {value!r}")
        out.append((name, int(number)))
    return tuple(out)


@dataclass(frozen=True)
class Target:
    servers: tuple[tuple[str, int], ...]  # tried in this order: the primary first
    dbname: str
    user: str = ""
    password: str = ""

    def postfix(self) -> dict[str, str]:
        """A pgsql: map file's connection lines (pgsql_table(5)): hosts tried in order."""
        return {"hosts": " ".join(f"{h}:{p}" for h, p in self.servers), "user": self.user,
                "password": self.password, "dbname": self.dbname}

    def libpq(self, **extra: str) -> str:
        """A libpq connection string; with several servers libpq tries them in order."""
        return make_conninfo(host=",".join(h for h, _ in self.servers), port=",".join(str(p) for _, p in self.servers),
                             dbname=self.dbname, user=self.user, password=self.password, **extra)

    def pgbouncer(self) -> str:
        """The target of a [databases] line in pgbouncer.ini (the first server)."""
        host, port = self.servers[0]
        return f"host={host} port={port} dbname={self.dbname}"

    def pdo(self) -> str:
        """PDO's pgsql DSN, pgsql:host=...;port=...;dbname=... (a host starting with / is a
        Unix socket directory; the first server). Its values cannot be quoted, so a value
        with a separator or a quote is refused."""
        host, port = self.servers[0]
        for name, value in (("--host", host), ("--dbname", self.dbname), ("--user", self.user)):
            if not value or any(c in value for c in ";='\"\\ \n\r\t\0") or (name != "--host" and "/" in value):
                raise Failure(f"{name} {value!r} cannot go into Roundcube's database settings")
        return f"pgsql:host={host};port={int(port)};dbname={self.dbname}"

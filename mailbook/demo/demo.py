"""`mailbook demo`: the whole setup on a private, throwaway PostgreSQL cluster.

Everything the demo makes lives in one directory (default ./.mailbook): the cluster,
its socket, a pgpass file and the generated passwords (files readable by their owner
only, never printed). Running it again reuses what is there.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from mailbook import connect
from mailbook.database import migrations as mig
from mailbook.database.init import init_database
from mailbook.demo.cluster import SUPERUSER, PrivateCluster
from mailbook.files import write_private
from mailbook.passwords import new_password, set_role_password
from mailbook.postfix.maps import expand, map_files

DATABASE = "mail"
ROOT_FALLBACK = Path("/var/tmp/mailbook-demo")
EXAMPLE_DOMAIN = "example.com"
EXAMPLE_MAILBOX = "foo@example.com"
EXAMPLE_ALIAS = "postmaster@example.com"
NOT_FOUND = "(not found)"
LOOKUP_KEYS = [EXAMPLE_MAILBOX, EXAMPLE_ALIAS, EXAMPLE_DOMAIN, "Foo@EXAMPLE.com", "nobody@example.com"]


def default_root() -> Path:
    """./.mailbook, except as root in a directory the postgres OS user cannot enter (a
    checkout under /root, mode 0700): the server runs as postgres, so its data then
    lives in /var/tmp/mailbook-demo. The same answer every time, so --stop finds it."""
    here = Path(".mailbook")
    if os.geteuid() != 0 or (here / "data").exists():
        return here
    probe = subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-x", str(Path.cwd())],
                           capture_output=True)
    return here if probe.returncode == 0 else ROOT_FALLBACK


@dataclass
class DemoReport:
    root: Path
    admin_dsn: str
    reader_dsn: str
    auth_dsn: str
    pgpass: Path
    mailbox_password_file: Path
    done: list[str] = field(default_factory=list)
    lookups: list[tuple[str, str, str, str]] = field(default_factory=list)  # map, parameter, key, answer


def _service_password(conn: psycopg.Connection, root: Path, role: str, done: list[str]) -> str:
    path = root / f"{role}.password"
    if path.exists():
        return path.read_text().strip()
    password = new_password()
    set_role_password(conn, role, password)
    write_private(path, password + "\n")
    done.append(f"set a password for {role} (in {path})")
    return password


def run(root: Path) -> DemoReport:
    cluster = PrivateCluster(root)
    fresh = not cluster.initialised()
    cluster.start()
    done = ["started a new private PostgreSQL cluster" if fresh else "reused the private PostgreSQL cluster"]
    created = init_database(cluster.dsn(), DATABASE)
    roles = [line.removeprefix("created role ") for line in created if line.startswith("created role ")]
    done += ([f"created roles {', '.join(roles)}"] if roles else []) + [
        line for line in created if not line.startswith("created role ")]
    admin_dsn = cluster.dsn(DATABASE)
    with connect(admin_dsn) as conn:
        applied = mig.apply(conn)
        if applied.moved:  # a private cluster left by a demo before 1.0
            done.append("moved onto the 1.0 baseline: the schema is unchanged")
        if applied:
            done.append(f"applied {len(applied)} migration(s), {applied[0]} to {applied[-1]}"
                        if len(applied) > 1 else f"applied {applied[0]}")
        passwords = {r: _service_password(conn, cluster.root, r, done) for r in ("mailreader", "mailauth")}
    pgpass = cluster.root / "pgpass"
    write_private(pgpass, "".join(f"127.0.0.1:{cluster.port}:{DATABASE}:{r}:{p}\n" for r, p in passwords.items()))

    mailbox_password_file = cluster.root / f"{EXAMPLE_MAILBOX}.password"
    with connect(admin_dsn) as conn:
        conn.execute("SET ROLE mailadmin")  # provision through the API, as an admin would
        exists = lambda q, v: conn.execute(f"SELECT EXISTS ({q})", (v,)).fetchone()[0]
        if not exists("SELECT FROM transports WHERE domain = %s", EXAMPLE_DOMAIN):
            conn.execute("SELECT add_domain(%s)", (EXAMPLE_DOMAIN,))
            done.append(f"SELECT add_domain('{EXAMPLE_DOMAIN}')")
        if not exists("SELECT FROM mailboxes WHERE email = %s", EXAMPLE_MAILBOX):
            password = new_password()
            conn.execute("SELECT add_mailbox(%s, %s, %s)", (EXAMPLE_MAILBOX, password, "Foo Lastname"))
            write_private(mailbox_password_file, password + "\n")
            done.append(f"SELECT add_mailbox('{EXAMPLE_MAILBOX}', <password in {mailbox_password_file.name}>, 'Foo Lastname')")
        if not exists("SELECT FROM aliases WHERE alias = %s", EXAMPLE_ALIAS):
            conn.execute("SELECT add_alias(%s, %s)", (EXAMPLE_ALIAS, EXAMPLE_MAILBOX))
            done.append(f"SELECT add_alias('{EXAMPLE_ALIAS}', '{EXAMPLE_MAILBOX}')")

    tcp = f"host=127.0.0.1 port={cluster.port} dbname={DATABASE}"
    report = DemoReport(cluster.root, admin_dsn, f"{tcp} user=mailreader", f"{tcp} user=mailauth",
                        pgpass, mailbox_password_file, done)
    # what Postfix would see: each map's own query, as mailreader, over TCP
    with connect(report.reader_dsn, password=passwords["mailreader"]) as conn:
        for m in map_files():
            for key in LOOKUP_KEYS:
                query = expand(m.query, key)
                rows = conn.execute(query).fetchall() if query else []
                report.lookups.append((m.name, m.parameter, key, ",".join(r[0] for r in rows) if rows else NOT_FOUND))
    return report


def stop(root: Path) -> bool:
    cluster = PrivateCluster(root)
    running = cluster.running()
    cluster.stop()
    return running


def reset(root: Path) -> None:
    PrivateCluster(root).destroy()

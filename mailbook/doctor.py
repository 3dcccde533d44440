"""`mailbook doctor`: audit a live server and, optionally, the installed Postfix map files.
The database checks are sql/doctor.sql; pg_hba.conf, migrations and files are read here."""

from __future__ import annotations

import grp
import ipaddress
import os
import stat
from pathlib import Path

import psycopg

from mailbook import data_dir
from mailbook import migrations as mig
from mailbook.daemons import check_maps
from mailbook.maps import map_files

Check = tuple[str, str, str]  # (check, pass|warn|fail, detail)


def database_checks(conn: psycopg.Connection) -> list[Check]:
    return [tuple(row) for row in conn.execute((data_dir("sql") / "doctor.sql").read_text())]


def hba_checks(conn: psycopg.Connection) -> list[Check]:
    """pg_hba.conf as the server reads it: errors, trust or cleartext over the network,
    md5, and lines letting any role into any database from beyond loopback."""
    try:
        with conn.transaction():
            rules = conn.execute("SELECT line_number, type, database, user_name, address, auth_method, error"
                                 " FROM pg_catalog.pg_hba_file_rules ORDER BY line_number").fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return [("pg_hba.conf", "warn", "only a superuser may read pg_hba_file_rules: run doctor as one")]
    found: list[Check] = []
    for line, kind, databases, users, address, method, error in rules:
        where = f"line {line}"
        if error:
            found.append(("pg_hba.conf", "fail", f"{where}: {error}"))
        elif method in ("trust", "password") and kind != "local":
            found.append(("pg_hba.conf", "fail", f"{where}: {method} over the network ({address})"))
        elif method == "password":
            found.append(("pg_hba.conf", "fail", f"{where}: password sends it in clear text; use scram-sha-256"))
        elif method == "md5":
            found.append(("pg_hba.conf", "warn", f"{where}: md5; use scram-sha-256"))
        elif method == "trust":
            found.append(("pg_hba.conf", "warn", f"{where}: trust on the local socket for {','.join(users)}"))
        elif kind != "local" and databases == ["all"] and users == ["all"] and not _loopback(address):
            found.append(("pg_hba.conf", "warn", f"{where}: any role into any database from {address}"))
    return found or [("pg_hba.conf", "pass", f"{len(rules)} line(s): no trust, cleartext or md5 over the network")]


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name, samehost, samenet, all


def migration_checks(conn: psycopg.Connection) -> list[Check]:
    pending = [s.id for s in mig.status(conn) if not s.applied]
    if pending:
        return [("migrations", "warn", f"{len(pending)} pending ({pending[0]} …): run mailbook migrate apply")]
    return [("migrations", "pass", "all applied")]


def map_file_checks(dest: Path, config_dir: Path | None) -> list[Check]:
    """Each installed map: not readable by others (it holds a password), group postfix
    (virtual(8) must read it), owned by root; and whether it answers a lookup."""
    try:
        postfix_gid = grp.getgrnam("postfix").gr_gid
    except KeyError:
        postfix_gid = None
    answers = {m.name: (ok, answer) for m, _key, answer, ok in check_maps("doctor-probe@invalid.example", dest, config_dir)}
    found: list[Check] = []
    for m in map_files():
        name, path = f"map {m.name}", dest / m.name
        if not path.exists():
            found.append((name, "fail", f"not installed in {dest}: mailbook maps install"))
            continue
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode)
        problems = []
        if mode & 0o007:
            problems.append(("fail", f"mode {mode:04o}: others may read its password; chmod 0640"))
        elif postfix_gid is not None and st.st_gid != postfix_gid:
            problems.append(("warn", "not group postfix: Postfix's daemons may not read it"))
        elif st.st_uid != 0 and os.geteuid() == 0:
            problems.append(("warn", "not owned by root"))
        ok, answer = answers[m.name]
        if not ok:
            problems.append(("fail", f"postmap -q fails: {answer}"))
        found += [(name, status, detail) for status, detail in problems] or [(name, "pass", "0640-safe and answers")]
    return found

#!/usr/bin/env python3
"""IMAP logins per second through mailbook's passdb, with and without Dovecot's auth cache,
next to a passwd-file floor holding the same hashes.

    scripts/bench.sh --logins [--rounds 3] [--costs 10,8] [--out DIR]
    (that is: .venv/bin/python -m benchmarks.logins ..., from the checkout)

Why (issue 35, part 4): an admin whose users' phones and webmail open many short IMAP
connections wants to know what a login costs and what to set. Three Dovecots run side by
side on one private PostgreSQL, each on its own loopback port:
  * "passwd-file": the floor. Dovecot's passwd-file passdb with the very hashes mailbook
    stored, a static userdb: no SQL at all, no allow-list, no active flags.
  * "mailbook": `mailbook dovecot install` as shipped except the cache (--auth-cache-ttl 0):
    every login asks PostgreSQL (password_query, then user_query for the IMAP process).
  * "mailbook, cache": the shipped auth cache (auth_cache_ttl 900 s), warmed by one login
    of every user before the runs.
Mailboxes are added through add_mailbox(), so their hashes are bcrypt at settings'
bcrypt_cost, once per cost in --costs (10 is what mailbook ships; lower ones show what a
cheaper hash would buy, not a recommendation to take it). Each round, each cost, each
Dovecot in turn (the order swapped every round): --logins logins by --clients concurrent
clients (threads), each a TCP connection, LOGIN, LOGOUT: the IMAP process is started and
the userdb asked, as for a real client. Writes logins.json and logins.md to --out.

With --last-login (issue 33), two more Dovecots with the LMTP include and the shipped cache,
alike but for last-login-mailbook.conf.ext: "lmtp, cache" (--no-last-login) and "lmtp,
cache, last login" (each IMAP login also writes last_logins through the dict, as
mailquota): their ratio is what recording costs a login.

Each run is preceded, untimed, by one login of each of its users: Dovecot 2.3 ends an auth
process idle for a minute (idle_kill), and its cache with it, which happens here while the
other Dovecots take their turns, and would not on a server with logins every few seconds.
What would make the figures lie is checked, and the run fails if it does not hold: each
cached Dovecot's auth process is asked (SIGUSR2) for its cache counters before each run
(which resets them) and after it, and every lookup of the run (password and userdb) must have been a hit, from
the same process; with --last-login, every mailbox's last_logins row must carry a time from
the measured runs (recording did happen at the timed logins, not only at the warm-up). The
load average (other work on the machine) is recorded before and after each run.

Dovecot 2.3's configuration language (this machine's); the floor's passdb/userdb are
written here, mailbook's by its installer.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import re
import shutil
import signal
import statistics
import threading
import time
from pathlib import Path

import psycopg

from benchmarks.common import machine, write_report
from mailbook.demo.cluster import PrivateCluster
from mailbook.dovecot import installed_version
from mailbook.passwords import new_password
from tests.harness.database import migrate
from tests.harness.dovecot import Dovecot, dovecot_class, install_dovecot
from tests.harness.postfix import VMAIL_GID, VMAIL_UID
from tests.harness.process import ROOT, cli, private_dir, remove
from tests.harness.tls import certificate

DOMAIN = "logins.example.com"
PASSWORD = "correct horse battery staple"  # one password for all: the hash's cost is what differs


def users_for(cost: int, count: int) -> list[str]:
    return [f"u{i}-cost{cost}@{DOMAIN}" for i in range(count)]


def add_users(dsn: str, costs: list[int], count: int) -> dict[str, str]:
    """count mailboxes per cost through add_mailbox() at that bcrypt cost; email -> hash."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT add_domain(%s)", (DOMAIN,))
        for cost in costs:
            conn.execute("UPDATE settings SET bcrypt_cost = %s", (cost,))
            for email in users_for(cost, count):
                conn.execute("SELECT add_mailbox(%s, %s)", (email, PASSWORD))
        conn.execute("UPDATE settings SET bcrypt_cost = 10")
        return dict(conn.execute("SELECT email, password FROM users WHERE domain = %s", (DOMAIN,)).fetchall())


FLOOR_23 = """\
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%d/%n
}}
mail_location = maildir:~
"""


def floor_dovecot(root: Path, mail: Path, hashes: dict[str, str]) -> Dovecot:
    """A Dovecot whose passdb is a passwd-file of the same hashes (its include stands where
    mailbook's 99-mailbook.conf would)."""
    conf = root / "floor-conf"
    conf.mkdir(parents=True)
    users = conf / "users"
    users.write_text("".join(f"{email}:{h}::::::\n" for email, h in sorted(hashes.items())))
    users.chmod(0o640)  # Dovecot's auth process reads it as dovecot, as Debian ships /etc/dovecot/users
    shutil.chown(users, group="dovecot")
    (conf / "99-mailbook.conf").write_text(FLOOR_23.format(users=users, uid=VMAIL_UID, gid=VMAIL_GID, mail=mail))
    dovecot = dovecot_class()(root / "dovecot", conf / "none.conf.ext", conf / "auth.conf.ext", mail)
    dovecot.root.mkdir(parents=True, exist_ok=True)
    return dovecot


def lmtp_dovecot(root: Path, mail: Path, connection: tuple[str, ...], quota_pw: Path, last_login: bool) -> Dovecot:
    """`mailbook dovecot install` with the LMTP include (its sockets in a queue directory of
    its own: no Postfix is needed to log in over IMAP) and the shipped cache, with or without
    the last-login include."""
    conf, queue = root / "dovecot-conf", root / "queue"
    (queue / "private").mkdir(parents=True)
    cert, key = certificate(root)
    cli(["dovecot", "install", "--dest", str(conf / "dovecot-sql.conf.ext"), "--conf-d", str(conf),
         "--mailbox-base", str(mail), "--postfix-queue", str(queue), "--vmail-user", "nobody", "--vmail-group", "nogroup",
         "--no-submission", "--tls-cert", str(cert), "--tls-key", str(key), "--quota-password-file", str(quota_pw),
         "--last-login" if last_login else "--no-last-login", *connection], check=True)
    dovecot = dovecot_class()(root / "dovecot", conf / "dovecot-sql.conf.ext", conf / "auth-mailbook.conf.ext", mail,
                              conf / "lmtp-mailbook.conf.ext")
    dovecot.root.mkdir(exist_ok=True)
    return dovecot


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def auth_cache_hits(dovecot: Dovecot) -> tuple[int, int, int]:
    """(auth process, hits, lookups) of the auth cache since the last SIGUSR2, as its auth
    process logs them on SIGUSR2 (and then resets them)."""
    master = int((dovecot.root / "run" / "master.pid").read_text())
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and _ppid(p) == master and _cmdline(p).startswith(b"dovecot/auth\0")]
    if not pids:
        raise SystemExit(f"no dovecot/auth process under {dovecot.root}'s master")
    before = len(dovecot.log_text())
    os.kill(pids[0], signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = re.search(r"Authentication cache hits (\d+)/(\d+)", dovecot.log_text()[before:])
        if found:
            return pids[0], int(found.group(1)), int(found.group(2))
        time.sleep(0.2)
    raise SystemExit(f"{dovecot.root}: its auth process logged no cache hits after SIGUSR2")


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def login_once(port: int, user: str) -> None:
    imap = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    try:
        imap.login(user, PASSWORD)
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def logins_per_second(port: int, users: list[str], logins: int, clients: int) -> float:
    """logins logins (users in turn) by clients threads; every one must succeed."""
    failures: list[str] = []
    counter = iter(range(logins))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                login_once(port, users[i % len(users)])
            except (imaplib.IMAP4.error, OSError) as e:
                failures.append(f"{users[i % len(users)]}: {e}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if failures:
        raise SystemExit(f"{len(failures)} logins failed on port {port}, e.g. {failures[0]}")
    return round(logins / seconds, 1)


def run(rounds: int, costs: list[int], users: int, logins: int, clients: int, out_dir: Path | None,
        last_login: bool = False) -> dict:
    if installed_version() != "2.3":
        raise SystemExit("the floor's passwd-file configuration is written in Dovecot 2.3's language")
    work = private_dir("mailbook-logins-")
    cluster = PrivateCluster(work / "pg")
    dovecots: dict[str, Dovecot] = {}
    try:
        cluster.start()
        auth_pw, quota_pw = new_password(), new_password()
        dsn = migrate(cluster, "mail", mailauth=auth_pw, mailquota=quota_pw)
        (work / "quota.pw").write_text(quota_pw + "\n")
        (work / "quota.pw").chmod(0o600)
        hashes = add_users(dsn, costs, users)
        (work / "auth.pw").write_text(auth_pw + "\n")
        (work / "auth.pw").chmod(0o600)
        mail = work / "mail"
        mail.mkdir()
        shutil.chown(mail, VMAIL_UID, VMAIL_GID)
        connection = ("--port", str(cluster.port), "--dbname", "mail", "--password-file", str(work / "auth.pw"))
        dovecots = {
            "passwd-file": floor_dovecot(work / "floor", mail, hashes),
            "mailbook": install_dovecot(work / "nocache", mail, *connection),
            "mailbook, cache": install_dovecot(work / "cache", mail, *connection, shipped_cache=True),
        }
        if last_login:
            for name, on in (("lmtp, cache", False), ("lmtp, cache, last login", True)):
                dovecots[name] = lmtp_dovecot(work / name.replace(", ", "-").replace(" ", "-"), mail, connection,
                                              work / "quota.pw", on)
        for d in dovecots.values():
            d.start()

        def warm(name: str, cost: int) -> None:
            """One login of each user: processes forked, the cache filled (not timed)."""
            try:
                for user in users_for(cost, users):
                    login_once(dovecots[name].port, user)
            except imaplib.IMAP4.error as e:
                raise SystemExit(f"{name}: {e}; its log: {dovecots[name].log_errors()}") from None

        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            result = {"machine": machine(conn), "dovecot": installed_version(), "rounds": rounds, "costs": costs,
                      "last_login": last_login,
                      "users_per_cost": users, "logins": logins, "clients": clients,
                      "runs": {str(c): {n: [] for n in dovecots} for c in costs},
                      "load": {str(c): {n: [] for n in dovecots} for c in costs}, "cache_hits": {}}
        recorded_from: dict[int, int] = {}  # cost: when the last-login Dovecot's latest timed run began
        names = list(dovecots)
        for r in range(rounds):
            for cost in costs:
                for name in (names if r % 2 == 0 else names[::-1]):
                    warm(name, cost)
                    cached = "cache" in name
                    counters = auth_cache_hits(dovecots[name]) if cached else None
                    if name == "lmtp, cache, last login":  # its warm-up's writes a second older than the run's
                        time.sleep(1.05)
                        recorded_from[cost] = int(time.time())
                    before = load()
                    rate = logins_per_second(dovecots[name].port, users_for(cost, users), logins, clients)
                    result["runs"][str(cost)][name].append(rate)
                    result["load"][str(cost)][name].append([before, load()])
                    if cached:  # every lookup of the run answered from the cache, by the same process
                        after = auth_cache_hits(dovecots[name])
                        hits, lookups = after[1], after[2]
                        cache = result["cache_hits"].setdefault(name, {"hits": 0, "lookups": 0})
                        cache["hits"] += hits
                        cache["lookups"] += lookups
                        if after[0] != counters[0] or hits != lookups or hits < 2 * logins:
                            raise SystemExit(f"{name}, cost {cost}: {hits} auth cache hits of {lookups} lookups for"
                                             f" {logins} logins (auth process {counters[0]}, then {after[0]})")
                print(f"round {r + 1}, cost {cost}: "
                      + ", ".join(f"{n} {result['runs'][str(cost)][n][-1]}/s" for n in names), flush=True)
        result["errors"] = {n: d.log_errors() for n, d in dovecots.items()}
        if last_login:  # the plugin wrote at the timed logins: each mailbox's row is from its last timed run
            time.sleep(1)  # the dict's writes are asynchronous
            with psycopg.connect(dsn) as conn:
                rows = fresh = 0
                for cost in costs:
                    n, f = conn.execute("SELECT count(*), count(*) FILTER (WHERE login_epoch >= %s) FROM last_logins"
                                        " WHERE service = 'imap' AND email = ANY(%s)",
                                        (recorded_from[cost], users_for(cost, users))).fetchone()
                    rows, fresh = rows + n, fresh + f
            result["last_logins_rows"] = rows
            if rows != users * len(costs) or fresh != rows:
                raise SystemExit(f"last_logins: {rows} imap rows ({fresh} written by the timed logins)"
                                 f" for {users * len(costs)} mailboxes")
    finally:
        for d in dovecots.values():
            if d.conf.exists():
                d.stop()
        cluster.destroy()
        remove(work)
    result["ratios"] = {c: {n: round(statistics.median(x / y for x, y in zip(t[n], t["passwd-file"])), 2)
                            for n in t} for c, t in result["runs"].items()}
    if last_login:  # what recording costs a login: with / without, the median of per-round ratios
        result["last_login_ratio"] = {c: round(statistics.median(
            x / y for x, y in zip(t["lmtp, cache, last login"], t["lmtp, cache"])), 2) for c, t in result["runs"].items()}
    if out_dir:
        write_report(out_dir, "logins", result, markdown(result))
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    loads = [x for runs in r.get("load", {}).values() for pairs in runs.values() for pair in pairs for x in pair]
    lo, hi = (min(loads), max(loads)) if loads else (0, 0)
    lines = ["# IMAP logins per second", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; PostgreSQL {m['postgresql']}, Dovecot {r['dovecot']}. "
             f"{r['users_per_cost']} mailboxes per bcrypt cost; each run {r['logins']} logins (connect, LOGIN, "
             f"LOGOUT) by {r['clients']} concurrent clients; {r['rounds']} rounds, the Dovecots taking turns; "
             "ratios are the median of per-round ratios to the passwd-file floor (benchmarks/logins.py)."
             + (f" last_logins rows written: {r.get('last_logins_rows')}." if r.get("last_login") else "")
             + (f" Load average {lo:.1f} to {hi:.1f} during the runs (other work on the machine)." if loads else "")
             + "".join(f" {n}: {c['hits']:,} auth cache hits of {c['lookups']:,} lookups in the timed runs."
                       for n, c in r.get("cache_hits", {}).items()), "",
             "| bcrypt cost | Dovecot | logins/s | / passwd-file |", "|---|---|---|---|"]
    for cost, runs in r["runs"].items():
        for name, rates in runs.items():
            lines.append(f"| {cost} | {name} | {min(rates):,.1f}–{max(rates):,.1f} | {r['ratios'][cost][name]:.2f}x |")
    if r.get("last_login_ratio"):
        lines += ["", "Last-login recording, logins/s with / without (lmtp, cache, last login / lmtp, cache): "
                  + ", ".join(f"cost {c}: {x:.2f}x" for c, x in r["last_login_ratio"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--costs", default="10,8", help="bcrypt costs, comma-separated (10: as shipped)")
    parser.add_argument("--users", type=int, default=50, help="mailboxes per cost")
    parser.add_argument("--logins", type=int, default=300, help="logins per run")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "local")
    parser.add_argument("--last-login", action="store_true",
                        help="also the LMTP include with and without last_login (what recording costs a login)")
    a = parser.parse_args()
    costs = [int(c) for c in a.costs.split(",")]
    print(markdown(run(a.rounds, costs, a.users, a.logins, a.clients, a.out, a.last_login)))


if __name__ == "__main__":
    main()

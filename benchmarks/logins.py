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

Dovecot 2.3's configuration language (this machine's); the floor's passdb/userdb are
written here, mailbook's by its installer.
"""

from __future__ import annotations

import argparse
import imaplib
import shutil
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
        for name, d in dovecots.items():  # warm: processes forked; the cache filled
            try:
                for cost in costs:
                    for user in users_for(cost, users):
                        login_once(d.port, user)
            except imaplib.IMAP4.error as e:
                raise SystemExit(f"{name}: {e}; its log: {d.log_errors()}") from None
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            result = {"machine": machine(conn), "dovecot": installed_version(), "rounds": rounds, "costs": costs,
                      "last_login": last_login,
                      "users_per_cost": users, "logins": logins, "clients": clients,
                      "runs": {str(c): {n: [] for n in dovecots} for c in costs}}
        names = list(dovecots)
        for r in range(rounds):
            for cost in costs:
                for name in (names if r % 2 == 0 else names[::-1]):
                    rate = logins_per_second(dovecots[name].port, users_for(cost, users), logins, clients)
                    result["runs"][str(cost)][name].append(rate)
                print(f"round {r + 1}, cost {cost}: "
                      + ", ".join(f"{n} {result['runs'][str(cost)][n][-1]}/s" for n in names), flush=True)
        result["errors"] = {n: d.log_errors() for n, d in dovecots.items()}
        if last_login:  # the plugin did write: one row per mailbox logged in to
            with psycopg.connect(dsn) as conn:
                result["last_logins_rows"] = conn.execute("SELECT count(*) FROM last_logins").fetchone()[0]
    finally:
        for d in dovecots.values():
            if d.conf.exists():
                d.stop()
        cluster.destroy()
        remove(work)
    result["ratios"] = {c: {n: round(statistics.median(x / y for x, y in zip(t[n], t["passwd-file"])), 2)
                            for n in t} for c, t in result["runs"].items()}
    if out_dir:
        write_report(out_dir, "logins", result, markdown(result))
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = ["# IMAP logins per second", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; PostgreSQL {m['postgresql']}, Dovecot {r['dovecot']}. "
             f"{r['users_per_cost']} mailboxes per bcrypt cost; each run {r['logins']} logins (connect, LOGIN, "
             f"LOGOUT) by {r['clients']} concurrent clients; {r['rounds']} rounds, the Dovecots taking turns; "
             "ratios are the median of per-round ratios to the passwd-file floor (benchmarks/logins.py)."
             + (f" last_logins rows written: {r.get('last_logins_rows')}." if r.get("last_login") else ""), "",
             "| bcrypt cost | Dovecot | logins/s | / passwd-file |", "|---|---|---|---|"]
    for cost, runs in r["runs"].items():
        for name, rates in runs.items():
            lines.append(f"| {cost} | {name} | {min(rates):,.1f}–{max(rates):,.1f} | {r['ratios'][cost][name]:.2f}x |")
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

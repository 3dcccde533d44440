#!/usr/bin/env python3
"""Delivery through Dovecot's LMTP: mailbook's configuration next to Dovecot's own floor,
and each of mailbook's extras measured apart.

    scripts/bench.sh --delivery [--rounds 5] [--scale 1] [--out DIR]
    (that is: .venv/bin/python -m benchmarks.delivery ..., from the checkout)

Why (issue 35, part 1): benchmarks/e2e.py measured LMTP at 0.46x of discard(8) and quota-
status at 2.4 ms a check, but not which part is Dovecot's own work (no design avoids it)
and which is mailbook's: a userdb query in PostgreSQL per delivery and per quota check,
quota_clone writing usage into SQL after every delivery, Pigeonhole reading the vacation
script from SQL (sieve_before dict) at every delivery.

The e2e benchmark's data (100,064 mailboxes; tests/harness/data.py) in one private
PostgreSQL; the Postfix side is the same for every configuration (mailbook's pgsql: maps,
a load test's limits). Dovecots, each installed by `mailbook dovecot install` and then,
for all but "mailbook", with parts taken out of (or put back into) the installed files:
  * "mailbook": as shipped (SQL passdb/userdb with the shipped auth cache, quota count,
    quota_clone into SQL, users' own Sieve scripts, the vacation script from SQL for the
    mailboxes whose userdb answer says they have a reply: none of the benchmark's);
  * "mailbook (1.0)": as 1.0 shipped it: the plugin's sieve_before for every mailbox, so
    Pigeonhole reads the vacation script from SQL at every delivery (two dict queries);
  * "- sieve dict": no vacation replies from SQL at all (no dict, no userdb field);
  * "- quota_clone": without quota_clone (usage no longer reaches SQL);
  * "- SQL userdb": passdb and userdb from a passwd-file of the same users, hashes, homes
    and quota rules, exported from the database (no change seen until re-exported);
  * "floor": all three out: passwd-file, quota counted, no quota_clone, no sieve dict.
Each LMTP-only configuration has its own Postfix; "mailbook" and "floor" have a second one
with main.cf.snippet's quota-status check at RCPT (in Dovecot's answer the userdb's quota).
Each round, each workload (1 and 20 recipients a message, every recipient a different
mailbox), every instance in turn (the order swapped every round): messages per second
until the queue is empty again. Then quota-status alone: Postfix's policy requests
straight to each socket (e2e.quota_status_cost). Writes delivery.json and delivery.md.

Dovecot 2.3's configuration language (this machine's): the rewrites below edit its files.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path

import psycopg

from benchmarks.common import machine, write_report
from benchmarks.e2e import (
    DELIVERY_WORKLOADS,
    SERVICE_PASSWORDS,
    Instance,
    build_mailbook,
    delivery,
    lmtp_dovecot,
    mailbook_postfix,
    policy_requests,
    quota_status_cost,
)
from mailbook.demo.cluster import PrivateCluster
from mailbook.dovecot import _SIEVE_23, installed_version
from mailbook.postfix.postconf import snippet_services
from tests.harness.data import BIG
from tests.harness.dovecot import Dovecot
from tests.harness.process import ROOT, private_dir, remove

# configuration -> the parts taken out of the installed files
CONFIGS = {
    "mailbook": set(),
    "mailbook (1.0)": {"+ 1.0 sieve_before"},
    "- sieve dict": {"sieve dict"},
    "- quota_clone": {"quota_clone"},
    "- SQL userdb": {"sql userdb"},
    "floor": {"sieve dict", "quota_clone", "sql userdb"},
}
WITH_QUOTA_STATUS = ("mailbook", "floor")
SIEVE_BEFORE = "sieve_before = dict:proxy::mailbook_sieve;name=mailbook-vacation"


def without(dovecot: Dovecot, parts: set[str], users: Path) -> None:
    """Take parts out of the files `mailbook dovecot install` wrote for dovecot (2.3), or
    put 1.0's plugin-wide sieve_before back."""
    lmtp = dovecot.lmtp_include.read_text()
    if parts & {"sieve dict", "+ 1.0 sieve_before"}:  # the userdb's sieve_before column out
        sql = dovecot.sql_conf.read_text()
        assert sql.count(_SIEVE_23) == 1, "the installed user_query changed: update benchmarks/delivery.py"
        dovecot.sql_conf.write_text(sql.replace(_SIEVE_23, ""))
    if "+ 1.0 sieve_before" in parts:
        lmtp, n = re.subn(r"^(plugin \{\n)", rf"\1  {SIEVE_BEFORE}\n", lmtp, flags=re.M)
        assert n == 1, "the installed LMTP include changed: update benchmarks/delivery.py"
    if "sieve dict" in parts:
        lmtp, m = re.subn(r"^\s*mailbook_sieve = pgsql:.*\n", "", lmtp, flags=re.M)
        assert m == 1, "the installed LMTP include changed: update benchmarks/delivery.py"
    if "quota_clone" in parts:
        lmtp, n = re.subn(r"^(mail_plugins = \$mail_plugins quota) quota_clone$", r"\1", lmtp, flags=re.M)
        lmtp, m = re.subn(r"^\s*quota_clone_dict = .*\n", "", lmtp, flags=re.M)
        lmtp, k = re.subn(r"^\s*mailbook_quota = pgsql:.*\n", "", lmtp, flags=re.M)
        assert n == m == k == 1, "the installed LMTP include changed: update benchmarks/delivery.py"
    dovecot.lmtp_include.write_text(lmtp)
    if "sql userdb" in parts:
        dovecot.auth_include.write_text(
            "# benchmarks/delivery.py: the same users from a passwd-file, no SQL\n"
            f"passdb {{\n  driver = passwd-file\n  args = {users}\n}}\n"
            f"userdb {{\n  driver = passwd-file\n  args = {users}\n}}\n")


def passwd_file(dsn: str, mail: Path, path: Path) -> int:
    """The users as Dovecot's passwd-file: hash, home (the maildir) and the quota rule the
    SQL userdb would answer; readable by Dovecot's auth process (group dovecot)."""
    base = str(mail).rstrip("/") + "/"
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT u.email, u.password, u.maildir, CASE WHEN u.quota_bytes IS NOT NULL OR u.quota_messages IS NOT NULL"
            " THEN '*' || coalesce(':bytes=' || u.quota_bytes, '') || coalesce(':messages=' || u.quota_messages, '')"
            " END FROM users u JOIN transports t ON t.domain = u.domain WHERE u.active AND t.active").fetchall()
    # user:password:uid:gid:gecos:home:shell:extra fields (uid and gid: mail_uid's)
    path.write_text("".join(f"{email}:{pw}::::{base}{maildir}::" + (f"userdb_quota_rule={rule}" if rule else "") + "\n"
                            for email, pw, maildir, rule in rows))
    path.chmod(0o640)
    shutil.chown(path, group="dovecot")
    return len(rows)


def _kind(statement: str) -> str:
    if "sieve_scripts" in statement:
        return "sieve dict"
    if "quota_usage" in statement:
        return "quota_clone"
    if " AS home," in statement:
        return "userdb"
    if "u.password" in statement:
        return "passdb"
    return "other"


def statement_counts(cluster: PrivateCluster, instances: dict[str, Instance], dovecots: dict[str, Dovecot],
                     messages: int = 50) -> dict:
    """Statements per delivered recipient, by kind, read from PostgreSQL's log (log_statement
    = all for Dovecot's two roles): each configuration's Dovecot restarted (a new connection
    takes the setting; its auth cache starts empty), then one message to each of `messages`
    mailboxes, one configuration at a time (nothing else sends meanwhile)."""
    out: dict = {}
    roles = ("mailauth", "mailquota")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        for role in roles:
            conn.execute(f"ALTER ROLE {role} SET log_statement = 'all'")
    try:
        for name, dovecot in dovecots.items():
            dovecot.stop()
            dovecot.start()
            start = cluster.log.stat().st_size
            instances[name].send(f"m@{BIG}", 1, messages, False, False)
            time.sleep(0.5)
            with open(cluster.log, errors="replace") as f:
                f.seek(start)
                text = f.read()
            kinds = Counter(_kind(m.group(1)) for m in re.finditer(r"LOG:  statement: (.*)", text))
            out[name] = {k: round(v / messages, 2) for k, v in sorted(kinds.items())}
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            for role in roles:
                conn.execute(f"ALTER ROLE {role} RESET log_statement")
    return out


def run(rounds: int, scale: float, out_dir: Path | None) -> dict:
    if installed_version() != "2.3":
        raise SystemExit("the rewrites of the installed files are written for Dovecot 2.3's language")
    work = private_dir("mailbook-delivery-")
    # seven Postfix instances and five Dovecots (auth workers, dict processes) connect at once
    cluster = PrivateCluster(work / "pg", settings=["shared_buffers = 512MB", "max_wal_size = 4GB", "max_connections = 500"])
    instances: dict[str, Instance] = {}
    dovecots: dict[str, Dovecot] = {}
    try:
        cluster.start()
        reader_pw = build_mailbook(cluster, "mail")
        maps = work / "maps"
        users = work / "users.passwd"
        mail = work / "mail"  # every configuration's maildirs: passwd-file's homes name it
        count = passwd_file(cluster.dsn("mail"), mail, users)
        for k, (name, parts) in enumerate(CONFIGS.items()):
            plain = Instance(name, work / f"postfix-{k}",
                             mailbook_postfix(maps, cluster.port, "mail", reader_pw, "lmtp", quota_status=False),
                             snippet_services(maps), deliver=True)
            instances[name] = plain
            home = plain
            if name in WITH_QUOTA_STATUS:
                qs = Instance(f"{name} + quota-status", work / f"postfix-{k}-qs",
                              mailbook_postfix(maps, cluster.port, "mail", reader_pw, "lmtp"),
                              snippet_services(maps), deliver=True)
                instances[qs.name] = qs
                home = qs
            (work / f"dovecot-{k}").mkdir()
            dovecot = lmtp_dovecot(work / f"dovecot-{k}", home, mail, cluster, "mail",
                                   SERVICE_PASSWORDS["mailauth"], SERVICE_PASSWORDS["mailquota"])
            without(dovecot, parts, users)
            dovecots[name] = dovecot
        for inst in instances.values():
            inst.start()
        for name, dovecot in dovecots.items():
            dovecot.start()
            if f"{name} + quota-status" in instances:  # Dovecot's sockets are in that queue: link them
                qs, plain = instances[f"{name} + quota-status"], instances[name]
                (plain.queue / "private" / "dovecot-lmtp").symlink_to(qs.queue / "private" / "dovecot-lmtp")
        for inst in instances.values():
            inst.send(f"m@{BIG}", 1, 100, False, False)  # warm: processes, Dovecot's auth cache
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            result = {"machine": machine(conn), "dovecot": installed_version(), "rounds": rounds, "scale": scale,
                      "mailboxes": count, "configs": {n: sorted(p) for n, p in CONFIGS.items()}}
        result["delivery"] = delivery(instances, rounds, scale)
        result["quota_status"] = {name: quota_status_cost(instances[f"{name} + quota-status"].queue
                                                          / "private" / "quota-status", policy_requests(scale))
                                  for name in WITH_QUOTA_STATUS}
        result["statements"] = statement_counts(cluster, instances, dovecots)
        result["problems"] = {n: i.deferred() for n, i in instances.items()}
        result["warnings"] = {**{n: i.log_errors() for n, i in instances.items()},
                              **{f"dovecot {n}": d.log_errors() for n, d in dovecots.items()}}
    finally:
        for dovecot in dovecots.values():
            if dovecot.conf.exists():
                dovecot.stop()
        for inst in instances.values():
            inst.stop()
        cluster.destroy()
        remove(work)
    result["ratios"] = {
        w: {c: round(statistics.median(x / y for x, y in zip(
            t[c]["delivered"], t["floor + quota-status" if c.endswith("quota-status") else "floor"]["delivered"])), 2)
            for c in t} for w, t in result["delivery"].items()}
    if out_dir:
        write_report(out_dir, "delivery", result, markdown(result))
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = ["# Delivery through Dovecot's LMTP: mailbook next to Dovecot's floor", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; PostgreSQL {m['postgresql']}, Dovecot {r['dovecot']}. "
             f"{r['mailboxes']:,} mailboxes; {r['rounds']} rounds, every configuration in turn; ratios are the "
             "median of per-round ratios to the floor with the same quota-status setting "
             "(benchmarks/delivery.py).", "",
             "| workload | configuration | delivered msg/s | delivered rcpt/s | / floor |", "|---|---|---|---|---|"]
    per = {w[0]: w[2] for w in DELIVERY_WORKLOADS}
    for w, t in r["delivery"].items():
        for c, x in t.items():
            d = x["delivered"]
            lines.append(f"| {w} | {c} | {min(d):,.1f}–{max(d):,.1f} | {min(d) * per[w]:,.0f}–{max(d) * per[w]:,.0f} | "
                         f"{r['ratios'][w][c]:.2f}x |")
    if "statements" in r:
        kinds = sorted({k for v in r["statements"].values() for k in v})
        lines += ["", "Statements in PostgreSQL per delivered recipient (Dovecot's roles; auth cache empty, "
                  "one message to each of 50 mailboxes):", "",
                  "| configuration | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
        lines += [f"| {c} | " + " | ".join(f"{v.get(k, 0):g}" for k in kinds) + " |" for c, v in r["statements"].items()]
    lines += ["", "quota-status by itself (one connection, Postfix's policy requests): "
              + "; ".join(f"{n} {q['us_per_check']} µs a check" for n, q in r["quota_status"].items())
              + ". Failed deliveries: " + ", ".join(f"{n} {v}" for n, v in r["problems"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="messages per run, as a share of e2e's delivery runs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "local")
    a = parser.parse_args()
    print(markdown(run(a.rounds, a.scale, a.out)))


if __name__ == "__main__":
    main()

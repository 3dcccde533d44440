#!/usr/bin/env python3
"""Postfix's lookups through two versions of mailbook side by side, alternating.

    .venv/bin/python -m benchmarks.lookup_compare --rounds 5 --baseline 740f79c

Why: issue 32 put scoped admins and resellers into the database, and promised that
Postfix's and Dovecot's lookups do not pay for them (they are not scoped: the map roles
never read admin_scopes). This run holds that promise to a measurement, and can hold any
later change to the same one.

One private PostgreSQL, two databases, the e2e benchmark's data in both (100,064
mailboxes, 20,000 aliases, an alias domain, a catch-all; tests/harness/data.py). Each side
builds its own database with its own code, in a child process of its own checkout
(`git archive` of the baseline, the work tree for the other side): init, migrate, and the
same two CSV files through its own `import_csv()` as mailadmin. On a side that has scoped
admins, every hosted domain gets one (a login in maildomainadmin, grant_domain_admin()),
so admin_scopes is as full as a provider's. Two private Postfix instances
(benchmarks/e2e.py's Instance: loopback, discard(8) delivery) read the pgsql: map files
mailbook installs, one per database; the map files are the work tree's for both, and the
report says whether the baseline's differ. smtp-source sends e2e's six workloads, the two
instances taking turns each round (the order swapped every round). Then PostgreSQL's own
CPU per lookup for each map's statement on each database (e2e.server_cpu). Writes
lookup-compare.json and .md to --out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from benchmarks.common import machine, two_sides, write_report
from benchmarks.e2e import (
    WORKLOADS,
    Instance,
    lookup_keys,
    lookup_statements,
    mailbook_postfix,
    messages_for,
    server_cpu,
    throughput,
)
from mailbook.demo.cluster import PrivateCluster
from mailbook.passwords import new_password
from mailbook.postfix.maps import map_files
from mailbook.postfix.postconf import snippet_services
from tests.harness.data import BIG, RELAY, all_mailboxes, hosted_domains, mailbook_csv
from tests.harness.process import ROOT, private_dir, remove

# Run by each side's own Python code (its checkout first on sys.path).
CHILD = r"""
import sys
import psycopg
tree, server, db, relay, *csvs = sys.argv[1:]
sys.path.insert(0, tree)
from mailbook.database.init import init_database
from mailbook.database import migrations as mig
from mailbook.provisioning import bulk
init_database(server, db)
dsn = server.replace("dbname=postgres", f"dbname={db}")
with psycopg.connect(dsn, autocommit=True) as conn:
    mig.apply(conn)
    conn.execute("SET ROLE mailadmin")
    for path in csvs:
        with open(path, encoding="utf-8") as f:
            count, problems = bulk.import_csv(conn, f, dry_run=False)
        assert not problems, problems[:5]
    conn.execute("RESET ROLE")
    conn.execute("SELECT add_domain(%s, 'smtp:[192.0.2.25]')", (relay,))
"""


def build(tree: Path, cluster: PrivateCluster, db: str, csvs: list[Path]) -> None:
    r = subprocess.run([sys.executable, "-c", CHILD, str(tree), cluster.dsn(), db, RELAY, *map(str, csvs)],
                       cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    if r.returncode != 0:
        raise SystemExit(f"building {db} from {tree} failed: {r.stderr.strip()[-2000:]}")


def scope_every_domain(cluster: PrivateCluster, db: str) -> int:
    """One scoped admin per hosted domain, where the side has them; returns how many."""
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        if conn.execute("SELECT to_regproc('public.grant_domain_admin') IS NULL").fetchone()[0]:
            return 0
        domains = [d for (d,) in conn.execute(
            "SELECT domain FROM transports WHERE transport = 'virtual:' AND alias_of IS NULL ORDER BY domain")]
        for i, domain in enumerate(domains):
            # roles are the cluster's: both sides' databases share them
            if conn.execute("SELECT to_regrole(%s) IS NULL", (f"bench_customer_{i}",)).fetchone()[0]:
                conn.execute(f"CREATE ROLE bench_customer_{i} LOGIN; GRANT maildomainadmin TO bench_customer_{i}")
            conn.execute("SELECT grant_domain_admin(%s, %s)", (f"bench_customer_{i}", domain))
        return len(domains)


def run(rounds: int, scale: float, baseline: str, out_dir: Path | None) -> dict:
    if os.geteuid() != 0:
        raise SystemExit("the lookup comparison runs Postfix, which needs root")
    work = private_dir("mailbook-lookup-compare-")
    base_tree = Path(tempfile.mkdtemp(prefix="mailbook-baseline-"))
    cluster = PrivateCluster(work / "pg", settings=["shared_buffers = 512MB", "max_wal_size = 4GB"])
    instances: list[Instance] = []
    try:
        trees = two_sides(baseline, base_tree, ROOT)
        names = list(trees)
        same_maps = subprocess.run(["git", "diff", "--quiet", baseline, "--", "postfix-maps"], cwd=ROOT).returncode == 0
        dbs = {names[0]: "lookups_baseline", names[1]: "lookups_head"}
        csvs = []
        for stem, text in zip(("mailboxes", "aliases"), mailbook_csv()):
            csvs.append(work / f"{stem}.csv")
            csvs[-1].write_text(text)
        os.chmod(work, 0o755)
        cluster.start()
        scoped = {}
        for name in names:
            build(trees[name], cluster, dbs[name], csvs)
            scoped[name] = scope_every_domain(cluster, dbs[name])
        password = new_password()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE mailreader PASSWORD {}").format(password))
            result = {"machine": {**machine(conn)}, "rounds": rounds, "scale": scale, "sides": names,
                      "scoped_admins": scoped, "same_map_files": same_maps,
                      "data": {"mailboxes": len(all_mailboxes()), "domains": len(hosted_domains()) + 2},
                      "messages": {w[0]: messages_for(w[2], scale) for w in WORKLOADS}}
        for db in dbs.values():
            with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
        for k, name in enumerate(names):
            maps = work / f"maps-{k}"
            instances.append(Instance(name, work / f"postfix-{k}",
                                      mailbook_postfix(maps, cluster.port, dbs[name], password),
                                      snippet_services(maps)))
        for inst in instances:
            inst.start()
            inst.send(f"m@{BIG}", 1, 300, False, False)  # warm: processes forked, caches filled
        result["throughput"] = throughput(instances, rounds, scale)
        templates = {m.name: m.query for m in map_files()}
        result["server_cpu"] = {name: server_cpu(cluster, dbs[name], "mailreader", password,
                                                 lookup_statements(templates, lookup_keys(scale)), min(3, rounds))
                                for name in names}
        result["warnings"] = {i.name: i.log_errors() for i in instances}
    finally:
        for inst in instances:
            inst.stop()
        cluster.destroy()
        remove(work)
        remove(base_tree)
    result["ratios"] = {w: round(statistics.median(a / b for a, b in zip(t[names[1]], t[names[0]])), 2)
                        for w, t in result["throughput"].items()}
    if out_dir:
        write_report(out_dir, "lookup-compare", result, markdown(result))
    return result


def markdown(r: dict) -> str:
    m, (a, b) = r["machine"], r["sides"]
    lines = [f"# Postfix lookups, {a} and {b} side by side", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; PostgreSQL {m['postgresql']}. "
             f"{r['data']['mailboxes']:,} mailboxes in {r['data']['domains']} domains, the same in both databases; "
             f"scoped admins: {a} {r['scoped_admins'][a]}, {b} {r['scoped_admins'][b]} (one per hosted domain where "
             f"the version has them). {r['rounds']} rounds, the two Postfix instances taking turns; ratios are the "
             f"median of per-round ratios. Map files: "
             f"{'the same in both versions' if r['same_map_files'] else 'the work tree' + chr(39) + 's (they differ)'}"
             " (benchmarks/lookup_compare.py).", "",
             f"| workload | {a} rcpt/s | {b} rcpt/s | {b} / {a} |", "|---|---|---|---|"]
    for w, t in r["throughput"].items():
        lines.append(f"| {w} | {min(t[a]):,.0f}–{max(t[a]):,.0f} | {min(t[b]):,.0f}–{max(t[b]):,.0f} | "
                     f"{r['ratios'][w]:.2f}x |")
    lines += ["", "PostgreSQL's CPU per lookup (µs, the lowest batch of 1,000; e2e.server_cpu):", "",
              f"| map | {a} | {b} |", "|---|---|---|"]
    for name in r["server_cpu"][a]:
        lines.append(f"| {name} | {r['server_cpu'][a][name]['us']} | {r['server_cpu'][b][name]['us']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="messages per run, as a share of e2e's default")
    parser.add_argument("--baseline", default="740f79c", help="the commit to compare with (default: before scoped admins)")
    parser.add_argument("--out", type=Path, default=None, help="write lookup-compare.json and .md here")
    args = parser.parse_args()
    print(markdown(run(args.rounds, args.scale, args.baseline, args.out)))


if __name__ == "__main__":
    main()

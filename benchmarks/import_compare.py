#!/usr/bin/env python3
"""The bulk import of two versions of mailbook side by side, alternating.

    .venv/bin/python -m benchmarks.import_compare --mailboxes 1000000 --rounds 2 --baseline aa9d5d3

One private PostgreSQL (run.py's settings). The baseline commit is unpacked with `git
archive` into a temporary directory; the work tree is the other side. Each round, each
side in turn (the order swapped every round, so drift on a shared machine falls on both):
a fresh database, created and migrated by that side's own code, takes the same CSV of N
pre-hashed mailboxes over N/1000 domains (run.py's dataset) through that side's own
`import_csv()` as mailadmin, timed around the call (COPY into staging, import_batch(),
commit), in a child process of that side. Then a bare COPY of the same rows into a
primary-key-only table (run.py's floor) in the same database. Writes import-compare.json
and .md to --out: every run, the medians, the ratios, and the load average before and
after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from benchmarks.common import machine, two_sides, write_report
from benchmarks.run import SERVER_SETTINGS, dataset
from mailbook.demo.cluster import PrivateCluster
from tests.harness.process import ROOT, private_dir, remove

# Run by each side's own Python code (its checkout first on sys.path): both layouts, the
# flat one before 1.0 (mailbook.setup, mailbook.bulk) and the rooms since.
CHILD = r"""
import io, json, sys, time
import psycopg
tree, server, db, csv_path = sys.argv[1:5]
sys.path.insert(0, tree)
try:
    from mailbook.database.init import init_database
    from mailbook.database import migrations as mig
    from mailbook.provisioning import bulk
except ImportError:
    from mailbook.setup import init_database
    from mailbook import migrations as mig
    from mailbook import bulk
init_database(server, db)
dsn = server.replace("dbname=postgres", f"dbname={db}")
with psycopg.connect(dsn, autocommit=True) as conn:
    mig.apply(conn)
    conn.execute("CHECKPOINT")
    conn.execute("SET ROLE mailadmin")
    with open(csv_path, encoding="utf-8") as f:
        t0 = time.perf_counter()
        count, problems = bulk.import_csv(conn, f, dry_run=False)
        seconds = time.perf_counter() - t0
    assert not problems, problems[:5]
    conn.execute("RESET ROLE")
    conn.execute("CHECKPOINT")
    conn.execute("CREATE TABLE floor (email text PRIMARY KEY, password text NOT NULL, realname text,"
                 " maildir text, quota_bytes bigint, active boolean)")
    with open(csv_path + ".floor", encoding="utf-8") as f:
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor().copy("COPY floor (email, password, realname) FROM STDIN"
                                                    " WITH (FORMAT csv)") as copy:
            while chunk := f.read(1 << 20):
                copy.write(chunk)
        floor = time.perf_counter() - t0
print(json.dumps({"rows": count, "seconds": seconds, "floor_seconds": floor}))
"""


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def one_import(tree: Path, cluster: PrivateCluster, db: str, csv_path: Path) -> dict:
    """One side's import into a fresh database `db`, then dropped."""
    before = load()
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(tree), cluster.dsn(), db, str(csv_path)],
                           cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
        if r.returncode != 0:
            raise SystemExit(f"import in {tree} failed: {r.stderr.strip()[-2000:]}")
        out = json.loads(r.stdout.strip().splitlines()[-1])
    finally:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return {**out, "load_before": before, "load_after": load()}


def prehashed(cluster: PrivateCluster, count: int = 16) -> list[str]:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        hashes = [conn.execute("SELECT '{BLF-CRYPT}' || crypt(%s, gen_salt('bf', 10))", (f"pw{i}",)).fetchone()[0]
                  for i in range(count)]
        conn.execute("DROP EXTENSION pgcrypto")
    return hashes


def run(n: int, rounds: int, baseline: str, out_dir: Path | None) -> dict:
    work = private_dir("mailbook-import-compare-")
    base_tree = Path(tempfile.mkdtemp(prefix="mailbook-baseline-"))
    cluster = PrivateCluster(work / "pg", settings=SERVER_SETTINGS)
    try:
        sides = two_sides(baseline, base_tree, ROOT)
        cluster.start()
        mailbox_csv = dataset(n, prehashed(cluster))[0]
        csv_path = work / "mailboxes.csv"
        csv_path.write_text(mailbox_csv)
        (work / "mailboxes.csv.floor").write_text("".join(
            line[len("mailbox,"):] + "\n" for line in mailbox_csv.splitlines() if line.startswith("mailbox,")))
        os.chmod(work, 0o755)
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            result = {"machine": {**machine(conn), "settings": SERVER_SETTINGS}, "mailboxes": n,
                      "rounds": rounds, "sides": list(sides), "runs": []}
        names = list(sides)
        for i in range(rounds):
            for name in (names if i % 2 == 0 else names[::-1]):
                r = one_import(sides[name], cluster, f"compare_{i}", csv_path)
                r = {"side": name, "round": i + 1, **{k: round(v, 2) if isinstance(v, float) else v
                                                      for k, v in r.items()}}
                print(json.dumps(r), flush=True)
                result["runs"].append(r)
    finally:
        cluster.destroy()
        remove(work)
        remove(base_tree)
    summary = {}
    for name in sides:
        mine = [r for r in result["runs"] if r["side"] == name]
        summary[name] = {"median_s": round(statistics.median(r["seconds"] for r in mine), 2),
                         "floor_median_s": round(statistics.median(r["floor_seconds"] for r in mine), 2)}
        summary[name]["floor_ratio"] = round(summary[name]["median_s"] / summary[name]["floor_median_s"], 2)
    base, ours = (summary[n_] for n_ in names)
    # the ratio of each round's pair (taken back to back), then their median
    pairs = [next(r for r in result["runs"] if r["side"] == names[1] and r["round"] == i + 1)["seconds"]
             / next(r for r in result["runs"] if r["side"] == names[0] and r["round"] == i + 1)["seconds"]
             for i in range(rounds)]
    result["summary"] = summary
    result["ratio"] = round(ours["median_s"] / base["median_s"], 2)
    result["pair_ratios"] = [round(p, 2) for p in pairs]
    if out_dir:
        write_report(out_dir, "import-compare", result, markdown(result))
    return result


def markdown(r: dict) -> str:
    m, names = r["machine"], r["sides"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mb']} MB; PostgreSQL {m['postgresql']} "
             f"({', '.join(m['settings'])}). {r['mailboxes']:,} pre-hashed mailboxes, {r['rounds']} rounds, "
             "alternating (benchmarks/import_compare.py).", "",
             "| round | side | import | bare COPY | import / COPY | load average before / after |",
             "|---|---|---|---|---|---|"]
    for x in r["runs"]:
        lines.append(f"| {x['round']} | {x['side']} | {x['seconds']} s | {x['floor_seconds']} s | "
                     f"{x['seconds'] / x['floor_seconds']:.2f}x | {x['load_before']} / {x['load_after']} |")
    s = r["summary"]
    lines += ["", f"Medians: {names[0]} {s[names[0]]['median_s']} s ({s[names[0]]['floor_ratio']}x its COPY), "
              f"{names[1]} {s[names[1]]['median_s']} s ({s[names[1]]['floor_ratio']}x its COPY); "
              f"{names[1]} / {names[0]}: {r['ratio']}x (each round's pair: "
              f"{', '.join(f'{p}x' for p in r['pair_ratios'])}).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", default="aa9d5d3", help="the commit to compare with (default: the turn before 1.0)")
    parser.add_argument("--out", type=Path, default=None, help="write import-compare.json and .md here")
    args = parser.parse_args()
    result = run(args.mailboxes, args.rounds, args.baseline, args.out)
    print(markdown(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What synchronous replication costs provisioning, measured side by side in one run.

    sudo .venv/bin/python -m benchmarks.patroni [--calls 200] [--mailboxes 5000]

Three setups, one after the other on the same machine, each reached over loopback TCP by
a help-desk login (a member of mailadmin), fsync on everywhere:
  single: one PostgreSQL (as `mailbook demo` starts one, durable);
  async:  the Patroni cluster of tests/test_patroni.py (etcd, three nodes), synchronous_mode off;
  sync:   the same cluster with synchronous_mode on (a commit waits for one standby's flush).
For each: add_mailbox() called --calls times (median and 95th percentile), at the
shipped bcrypt cost 10 and at cost 4 (where the commit, not the hash, is most of the call);
and `mailbook import`'s path (bulk.import_csv) for --mailboxes mailboxes with their
hashes given. Ratios against single are what compare across machines. Writes
patroni.json and patroni.md to --out.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import psycopg

from mailbook.database import migrations as mig
from mailbook.database.hba import hba_lines, patroni_fragment
from mailbook.database.init import init_database
from mailbook.demo.cluster import PrivateCluster
from mailbook.passwords import set_role_password
from mailbook.provisioning import bulk
from tests.harness.patroni import PatroniCluster
from tests.harness.process import ROOT, private_dir

ADMIN, ADMIN_PW = "helpdesk", "helpdesk-pw-bench"


def prepare(superuser_dsn: str) -> None:
    """mailbook init and migrate apply, the help-desk login, one domain."""
    list(init_database(superuser_dsn, "mail"))
    with psycopg.connect(superuser_dsn + " dbname=mail", autocommit=True) as conn:
        mig.apply(conn)
        conn.execute(f"CREATE ROLE {ADMIN} LOGIN IN ROLE mailadmin")
        set_role_password(conn, ADMIN, ADMIN_PW)
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('bench.example')")


def add_mailbox_times(dsn: str, tag: str, calls: int, cost: int, superuser_dsn: str) -> dict:
    with psycopg.connect(superuser_dsn + " dbname=mail", autocommit=True) as conn:
        conn.execute("UPDATE settings SET bcrypt_cost = %s", (cost,))
    times = []
    with psycopg.connect(dsn, password=ADMIN_PW, autocommit=True) as conn:
        for i in range(calls + 5):
            t0 = time.perf_counter()
            conn.execute("SELECT add_mailbox(%s, %s)", (f"{tag}-{cost}-{i}@bench.example", "a bench password"))
            if i >= 5:  # the first calls compile the functions
                times.append((time.perf_counter() - t0) * 1000)
    with psycopg.connect(superuser_dsn + " dbname=mail", autocommit=True) as conn:
        conn.execute("UPDATE settings SET bcrypt_cost = 10")
    times.sort()
    return {"calls": calls, "median_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * len(times)) - 1], 2)}


def import_time(dsn: str, tag: str, mailboxes: int, superuser_dsn: str) -> dict:
    with psycopg.connect(superuser_dsn + " dbname=mail", autocommit=True) as conn:
        hash_ = "{BLF-CRYPT}" + conn.execute("SELECT crypto.crypt('pw', crypto.gen_salt('bf', 10))").fetchone()[0]
    domain = f"{tag}.example"
    lines = ["kind,address,password_hash", f"domain,{domain},"]
    lines += [f"mailbox,user{i}@{domain},{hash_}" for i in range(mailboxes)]
    with psycopg.connect(dsn, password=ADMIN_PW, autocommit=True) as conn:
        t0 = time.perf_counter()
        count, problems = bulk.import_csv(conn, io.StringIO("\n".join(lines) + "\n"), dry_run=False)
        seconds = time.perf_counter() - t0
    assert not problems, problems[:3]
    return {"rows": count, "seconds": round(seconds, 2), "rows_per_s": round(count / seconds)}


def measure(name: str, dsn: str, superuser_dsn: str, calls: int, mailboxes: int) -> dict:
    print(f"{name}: add_mailbox ...", file=sys.stderr)
    out = {"add_mailbox_cost10": add_mailbox_times(dsn, name, calls, 10, superuser_dsn),
           "add_mailbox_cost4": add_mailbox_times(dsn, name, calls, 4, superuser_dsn)}
    print(f"{name}: import ...", file=sys.stderr)
    out["import"] = import_time(dsn, name, mailboxes, superuser_dsn)
    return out


def wait_sync(cluster: PatroniCluster, on: bool) -> None:
    cluster.wait_for(lambda s: any(m.get("role") == "sync_standby" for m in s["members"].values()) == on,
                     f"synchronous_mode {on}", 60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--mailboxes", type=int, default=5000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "debian12-2core")
    args = ap.parse_args()
    work = private_dir("mailbook-bench-patroni-")
    results: dict = {}
    try:
        single = PrivateCluster(work / "single", durable=True)
        single.start()
        try:
            prepare(single.dsn())
            tcp = f"host=127.0.0.1 port={single.port} dbname=mail user={ADMIN}"
            results["single"] = measure("single", tcp, single.dsn(), args.calls, args.mailboxes)
        finally:
            single.destroy()

        fragment = "\n".join(patroni_fragment(hba_lines())) + "\n    - host mail +mailadmin 127.0.0.1/32 scram-sha-256"
        (work / "cluster").mkdir()
        cluster = PatroniCluster(work / "cluster", 3, fragment)
        try:
            cluster.start()
            leader = cluster.leader()
            prepare(leader.dsn())
            dsn = cluster.multi_host_dsn("mail", ADMIN)
            sup = leader.dsn()
            results["sync"] = measure("sync", dsn, sup, args.calls, args.mailboxes)
            r = cluster.patronictl_("edit-config", "--set", "synchronous_mode=false", "--force")
            assert r.returncode == 0, r.stderr
            wait_sync(cluster, False)
            results["async"] = measure("async", dsn, sup, args.calls, args.mailboxes)
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results["machine"] = {"cpus": __import__("os").cpu_count(), "platform": platform.platform(),
                          "note": "2 shared cores; each setup alone while it ran"}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "patroni.json").write_text(json.dumps(results, indent=2) + "\n")
    s, a, y = results["single"], results["async"], results["sync"]

    def row(what, key, field, unit):
        base = s[key][field]
        return (f"| {what} | {base} {unit} | {a[key][field]} {unit} ({a[key][field] / base:.2f}×) "
                f"| {y[key][field]} {unit} ({y[key][field] / base:.2f}×) |")
    md = "\n".join([
        "| workload | one PostgreSQL | Patroni, 3 nodes, async | Patroni, 3 nodes, synchronous_mode |",
        "|---|---|---|---|",
        row("add_mailbox, bcrypt cost 10 (shipped), median", "add_mailbox_cost10", "median_ms", "ms"),
        row("add_mailbox, bcrypt cost 10, 95th percentile", "add_mailbox_cost10", "p95_ms", "ms"),
        row("add_mailbox, bcrypt cost 4 (the commit shows), median", "add_mailbox_cost4", "median_ms", "ms"),
        row("add_mailbox, bcrypt cost 4, 95th percentile", "add_mailbox_cost4", "p95_ms", "ms"),
        row(f"import of {args.mailboxes:,} mailboxes (hashes given)", "import", "seconds", "s"),
    ]) + "\n"
    (args.out / "patroni.md").write_text(
        "# Synchronous replication's cost (benchmarks/patroni.py)\n\n"
        f"{args.calls} add_mailbox() calls per setup over loopback TCP as a help-desk login;"
        " fsync on everywhere; ratios against one PostgreSQL in brackets.\n\n" + md)
    print(md)


if __name__ == "__main__":
    main()

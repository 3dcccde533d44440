#!/usr/bin/env python3
"""mailbook at provider scale, measured side by side with the floor in one run.

    scripts/bench.sh --mailboxes 1000,100000,1000000

On a private PostgreSQL (as `mailbook demo` starts one), for each N: load N mailboxes
over N/1000 domains and N/5 aliases through `mailbook import`'s own path; time every
lookup Postfix and Dovecot send (read from postfix-maps/ and dovecot/, prepared, as
mailreader/mailauth over TCP) next to `SELECT 1` on the same connection; feed keys
to Postfix's own client (`postmap -q -`); time the import next to a bare COPY into a
primary-key-only table. Once: add_mailbox() next to bare bcrypt, and `migrate apply`.
Writes results.json, results.md and latency.png to --out. Ratios, not absolute
times, are what compare across machines.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from benchmarks import postfixadmin
from benchmarks.common import machine as machine_of
from benchmarks.common import percentile, write_report
from mailbook.database import migrations as mig
from mailbook.database.init import init_database
from mailbook.database.plans import plan_scans
from mailbook.demo.cluster import PrivateCluster
from mailbook.dovecot import dovecot_queries
from mailbook.passwords import new_password
from mailbook.postfix.maps import map_files
from mailbook.postfix.postconf import DOMAIN_KEYED
from mailbook.provisioning import bulk
from tests.harness.database import migrate
from tests.harness.process import ROOT, private_dir, remove

SAMPLES = 3000  # lookups per query per N (and as many SELECT 1)
SERVER_SETTINGS = ["shared_buffers = 1GB", "max_wal_size = 4GB"]


def parameterised(template: str) -> str:
    """A map or passdb query with its key as bound parameters: '%s', '%u@%d' (Postfix)
    and '%u' (Dovecot) stand for the whole key; inside longer literals, Postfix's %u and
    %d for its local part and domain. '%%' is a literal % in both."""
    template = template.replace("'%{service}'", "%(service)s")  # Dovecot's, before Postfix's '%s'
    template = template.replace("'%r'", "''")  # Dovecot's client address: none, as from doveadm
    for placeholder in ("'%u@%d'", "'%s'", "'%u'"):
        template = template.replace(placeholder, "%(key)s")
    template = template.replace("'%u@' ||", "%(local)s || '@' ||").replace("'@%d'", "'@' || %(domain)s")
    template = template.replace("'%u', '%d'", "%(local)s, %(domain)s").replace("'%d'", "%(domain)s")
    assert "%u" not in template and "%d" not in template, template
    return template


def bound(key: str) -> dict[str, str]:
    local, _, domain = key.rpartition("@")
    return {"key": key, "local": local, "domain": domain, "service": "imap"}


# -- data ------------------------------------------------------------------------------------

def dataset(n: int, hashes: list[str]) -> tuple[str, str, list[str], list[str], list[str]]:
    """(mailbox CSV with its domains, alias CSV, mailboxes, aliases, domains).
    Every tenth domain has an alias domain, another tenth a catch-all, so each path
    of virtual.cf's lookup is taken; `domains` lists the alias domains too."""
    hosted = [f"d{i}.example.com" for i in range(max(1, n // 1000))]
    mailboxes = [f"user{i}@{hosted[i % len(hosted)]}" for i in range(n)]
    out = io.StringIO()
    out.write("kind,address,password_hash,realname\n")
    out.writelines(f"domain,{d},,\n" for d in hosted)
    out.writelines(f"mailbox,{m},{hashes[i % len(hashes)]},User {i}\n" for i, m in enumerate(mailboxes))
    aliases, alias_csv = [], io.StringIO()
    alias_csv.write("kind,address,destination\n")
    alias_domains = [f"alias-{d}" for d in hosted[::10]]
    alias_csv.writelines(f"domain,alias-{d},{d}\n" for d in hosted[::10])
    alias_csv.writelines(f"alias,@{d},{mailboxes[i]}\n" for i, d in enumerate(hosted) if i % 10 == 5)
    for i in range(0, n, 5):  # one per five mailboxes; every tenth of them has two destinations
        alias = f"alias{i}@{hosted[i % len(hosted)]}"
        aliases.append(alias)
        alias_csv.write(f"alias,{alias},{mailboxes[i]}\n")
        if i % 50 == 0:
            alias_csv.write(f"alias,{alias},forward{i}@elsewhere.example.net\n")
    return out.getvalue(), alias_csv.getvalue(), mailboxes, aliases, hosted + alias_domains


def keys_for(query_name: str, mailboxes, aliases, domains, count: int, rng: random.Random) -> list[str]:
    """Hits and misses mixed: a third mailboxes, a third aliases, a third unknown (in
    hosted domains, alias domains and catch-all domains, or in a domain not hosted);
    the domain of a known address is swapped for its alias domain one time in ten."""
    if query_name in DOMAIN_KEYED:
        return [rng.choice(domains) if i % 2 else f"unhosted{i}.example.org" for i in range(count)]
    aliased = {d.removeprefix("alias-") for d in domains if d.startswith("alias-")}
    pick = []
    for i in range(count):
        kind = i % 3
        if kind == 2:
            pick.append(f"nobody{i}@{rng.choice(domains)}" if i % 2 else f"someone{i}@unhosted.example.org")
            continue
        address = rng.choice(mailboxes if kind == 0 else aliases)
        if i % 10 == 1:  # a known address through its domain's alias domain
            while address.partition("@")[2] not in aliased:
                address = rng.choice(mailboxes if kind == 0 else aliases)
            address = address.replace("@", "@alias-")
        pick.append(address)
    return pick


# -- measurements ----------------------------------------------------------------------------

def lookup_latency(dsn: str, password: str, queries: dict[str, str], keys: dict[str, list[str]]) -> dict:
    """p50/p99 in microseconds for each query and for SELECT 1, interleaved one to one
    on one connection with prepared statements, so both see the same conditions. Each
    query's ratio is to the SELECT 1 samples taken between its own lookups."""
    out = {}
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        floor: list[float] = []
        for name, sql in queries.items():
            timings, own_floor = [], []
            for key in keys[name][:50]:  # warm up: prepare both, fill the caches
                conn.execute(sql, bound(key), prepare=True).fetchall()
                conn.execute("SELECT 1", prepare=True).fetchall()
            for key in keys[name]:
                t0 = time.perf_counter_ns()
                conn.execute("SELECT 1", prepare=True).fetchall()
                t1 = time.perf_counter_ns()
                conn.execute(sql, bound(key), prepare=True).fetchall()
                t2 = time.perf_counter_ns()
                own_floor.append((t1 - t0) / 1000)
                timings.append((t2 - t1) / 1000)
            floor += own_floor
            out[name] = {"p50_us": percentile(timings, 50), "p99_us": percentile(timings, 99),
                         "p50_ratio": round(percentile(timings, 50) / percentile(own_floor, 50), 2)}
        out["SELECT 1"] = {"p50_us": percentile(floor, 50), "p99_us": percentile(floor, 99), "p50_ratio": 1.0}
    return out


def plans(dsn: str, password: str, queries: dict[str, str], keys: dict[str, list[str]], count: int = 12) -> dict:
    """Each query's plan for its first keys (hits and misses), as the daemon's role: the
    scans it makes (a lookup function's own statements do not show) and the most pages
    any one lookup read, the function's statements included."""
    out = {}
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        for name, sql in queries.items():
            scans, pages = set(), 0
            for key in keys[name][:count]:
                conn.execute(sql, bound(key)).fetchall()  # a lookup function compiles on its first call
                (plan,) = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, bound(key)).fetchone()[0]
                scans |= {f"{node} on {relation}" if relation else node for node, relation in plan_scans(plan["Plan"])}
                pages = max(pages, plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"])
            out[name] = {"scans": sorted(scans), "max_pages": pages,
                         "seq_scan_of_users_or_aliases": any(s in scans for s in ("Seq Scan on users", "Seq Scan on aliases"))}
    return out


def postmap_rate(cluster: PrivateCluster, db: str, password: str, keys: dict[str, list[str]], work: Path) -> dict:
    """Keys per second through Postfix's own pgsql client, one postmap per map file."""
    postmap = shutil.which("postmap") or "/usr/sbin/postmap"
    if not os.path.exists(postmap):
        print("postmap not found (apt-get install postfix postfix-pgsql): skipping the postmap figures",
              file=sys.stderr)
        return {}
    config = work / "postfix"
    config.mkdir(exist_ok=True)
    (config / "main.cf").write_text("compatibility_level = 3.6\nmyhostname = bench.localdomain\n")
    out = {}
    for m in map_files():
        path = work / m.name
        path.write_text(m.with_connection({"hosts": f"127.0.0.1:{cluster.port}", "user": "mailreader",
                                           "password": password, "dbname": db}))
        path.chmod(0o640)
        def postmap_q(stdin: str, path=path, m=m) -> tuple[float, subprocess.CompletedProcess]:
            t0 = time.perf_counter()
            r = subprocess.run([postmap, "-c", str(config), "-q", "-", f"pgsql:{path}"], input=stdin,
                               capture_output=True, text=True)
            if r.returncode not in (0, 1) or "fatal" in r.stderr or "warning" in r.stderr:
                raise SystemExit(f"postmap failed on {m.name}: {r.stderr.strip()[:300]}")
            return time.perf_counter() - t0, r

        # the first postmap on a new map file takes about 1.8 s here (once); then its start
        # (configuration, connection) is timed alone with one key and taken out
        postmap_q(keys[m.name][0] + "\n")
        startup, _ = postmap_q(keys[m.name][0] + "\n")
        elapsed, r = postmap_q("".join(k + "\n" for k in keys[m.name]))
        n = len(keys[m.name])
        out[m.name] = {"keys": n, "keys_per_s": round((n - 1) / max(elapsed - startup, 1e-6)),
                       "startup_ms": round(startup * 1000, 1), "found": len(r.stdout.splitlines())}
    return out


def import_and_floor(admin_dsn: str, mailbox_csv: str, alias_csv: str, mailboxes: int) -> dict:
    """`mailbook import` of the mailboxes (and their domains), then of the aliases, and
    the floor: COPY of the same mailbox rows into a table with users' columns and
    primary key and nothing else."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")  # as a provisioning admin runs it
        t0 = time.perf_counter()
        count, problems = bulk.import_csv(conn, io.StringIO(mailbox_csv), dry_run=False)
        t_import = time.perf_counter() - t0
        assert not problems, problems[:5]
        t0 = time.perf_counter()
        alias_rows, problems = bulk.import_csv(conn, io.StringIO(alias_csv), dry_run=False)
        t_alias = time.perf_counter() - t0
        assert not problems, problems[:5]
        conn.execute("RESET ROLE")
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("DROP TABLE IF EXISTS bench.floor")
        conn.execute("CREATE TABLE bench.floor (email text PRIMARY KEY, password text NOT NULL, realname text,"
                     " maildir text, quota_bytes bigint, active boolean)")
        # the same mailbox rows as CSV text, streamed as the import streams its file
        floor_csv = "".join(line[len("mailbox,"):] + "\n" for line in mailbox_csv.splitlines()
                            if line.startswith("mailbox,"))
        rows = floor_csv.count("\n")
        t0 = time.perf_counter()
        with conn.transaction(), conn.cursor().copy("COPY bench.floor (email, password, realname) FROM STDIN"
                                                    " WITH (FORMAT csv)") as copy:
            for i in range(0, len(floor_csv), bulk.CHUNK):
                copy.write(floor_csv[i:i + bulk.CHUNK])
        t_floor = time.perf_counter() - t0
        conn.execute("DROP SCHEMA bench CASCADE")
        conn.execute("VACUUM ANALYZE transports, users, aliases")
        conn.execute("CHECKPOINT")  # so that no checkpoint's writes land in the lookup timings
    return {"rows": count, "mailboxes": mailboxes, "seconds": round(t_import, 2),
            "rows_per_s": round(count / t_import), "floor_seconds": round(t_floor, 2),
            "floor_rows_per_s": round(rows / t_floor), "ratio": round(t_import / t_floor, 2),
            "alias_rows": alias_rows, "alias_seconds": round(t_alias, 2)}


def add_mailbox_vs_bcrypt(admin_dsn: str, rounds: int = 15) -> dict:
    """add_mailbox() as mailadmin next to bare bcrypt at the same cost, alternating. Bare
    crypt() runs on a second connection as the superuser: pgcrypto lives in schema crypto
    (1.0), which mailadmin may not use, by design."""
    with psycopg.connect(admin_dsn, autocommit=True) as bare_conn, \
            psycopg.connect(admin_dsn, autocommit=True) as conn:
        cost = bare_conn.execute("SELECT bcrypt_cost FROM settings").fetchone()[0]
        conn.execute("SET ROLE mailadmin")
        conn.execute("SELECT add_domain('bcrypt.example.com')")
        bare, api = [], []
        for i in range(rounds):
            t0 = time.perf_counter()
            bare_conn.execute("SELECT crypto.crypt(%s, crypto.gen_salt('bf', %s))", (f"password {i}", cost)).fetchone()
            t1 = time.perf_counter()
            conn.execute("SELECT * FROM add_mailbox(%s, %s)", (f"b{i}@bcrypt.example.com", f"password {i}")).fetchone()
            t2 = time.perf_counter()
            bare.append(t1 - t0)
            api.append(t2 - t1)
        conn.execute("SELECT remove_domain('bcrypt.example.com', true)")
    b, a = statistics.median(bare), statistics.median(api)
    return {"cost": cost, "bcrypt_ms": round(b * 1000, 1), "add_mailbox_ms": round(a * 1000, 1),
            "ratio": round(a / b, 3)}


def migrate_times(cluster: PrivateCluster) -> dict:
    init_database(cluster.dsn(), "bench_migrate")
    with psycopg.connect(cluster.dsn("bench_migrate"), autocommit=True) as conn:
        t0 = time.perf_counter()
        applied = mig.apply(conn)
        t1 = time.perf_counter()
        again = mig.apply(conn)
        t2 = time.perf_counter()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute("DROP DATABASE bench_migrate WITH (FORCE)")
    assert applied and not again
    return {"migrations": len(applied), "empty_s": round(t1 - t0, 2), "noop_s": round(t2 - t1, 2)}


# -- one run ---------------------------------------------------------------------------------

def machine(conn: psycopg.Connection) -> dict:
    return {**machine_of(conn), "settings": SERVER_SETTINGS}


def run(sizes: list[int], out_dir: Path, samples: int) -> dict:
    work = private_dir("mailbook-bench-")  # as root the server runs as postgres, which must reach pg/ below
    # durable, as a mail server's is; memory and WAL room as one holding a million
    # mailboxes would be given (the defaults, 128 MB and 1 GB, suit a laptop's demo)
    cluster = PrivateCluster(work / "pg", settings=SERVER_SETTINGS)
    rng = random.Random(42)
    try:
        cluster.start()
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            result = {"machine": machine(conn), "samples": samples, "sizes": {}}
        hashes: list[str] = []
        result["migrate"] = migrate_times(cluster)
        print(f"migrate apply: {result['migrate']}", flush=True)
        map_queries = {m.name: parameterised(m.query) for m in map_files()}
        auth_queries = {name: parameterised(q) for name, q in dovecot_queries().items()}
        for n in sizes:
            db = f"bench_{n}"
            passwords = {r: new_password() for r in ("mailreader", "mailauth")}
            admin = migrate(cluster, db, **passwords)
            with psycopg.connect(admin, autocommit=True) as conn:
                hashes = hashes or [conn.execute("SELECT '{BLF-CRYPT}' || crypto.crypt(%s, crypto.gen_salt('bf', 10))",
                                                 (f"pw{i}",)).fetchone()[0] for i in range(16)]
            mailbox_csv, alias_csv, mailboxes, aliases, domains = dataset(n, hashes)
            figures = {"import": import_and_floor(admin, mailbox_csv, alias_csv, n)}
            print(f"N={n}: import {figures['import']}", flush=True)
            keys = {name: keys_for(name, mailboxes, aliases, domains, samples, rng)
                    for name in [*map_queries, *auth_queries]}
            tcp = f"host=127.0.0.1 port={cluster.port} dbname={db}"
            figures["postfix"] = lookup_latency(f"{tcp} user=mailreader", passwords["mailreader"], map_queries, keys)
            figures["dovecot"] = lookup_latency(f"{tcp} user=mailauth", passwords["mailauth"], auth_queries, keys)
            figures["postmap"] = postmap_rate(cluster, db, passwords["mailreader"], keys, work)
            figures["plans"] = {**plans(f"{tcp} user=mailreader", passwords["mailreader"], map_queries, keys),
                                **plans(f"{tcp} user=mailauth", passwords["mailauth"], auth_queries, keys)}
            templates = {m.name: m.query for m in map_files()}
            figures["postfixadmin"] = postfixadmin.compare(
                admin, f"{tcp} user=mailreader", passwords["mailreader"],
                ([templates["virtual.cf"]], [templates["mailboxes.cf"]]), mailboxes, aliases, domains, rng)
            if n == sizes[-1]:
                result["add_mailbox"] = add_mailbox_vs_bcrypt(admin)
            print(f"N={n}: postfix {figures['postfix']}\n      dovecot {figures['dovecot']}\n"
                  f"      postmap {figures['postmap']}\n      postfixadmin {figures['postfixadmin']}", flush=True)
            result["sizes"][str(n)] = figures
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    finally:
        cluster.destroy()
        remove(work)
    write_report(out_dir, "results", result, markdown(result))
    plot(result, out_dir / "latency.png")
    return result


# -- reports ---------------------------------------------------------------------------------

def markdown(r: dict) -> str:
    m = r["machine"]
    sizes = list(r["sizes"])
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_mb']} MB; PostgreSQL {m['postgresql']} "
             f"({', '.join(m.get('settings', []))}); {r['samples']} lookups per query and size, hits and misses "
             "mixed.", "",
             "**Lookup latency**, µs, p50 / p99 (p50 as a multiple of `SELECT 1` on the same connection):", "",
             "| query | " + " | ".join(f"{int(n):,} mailboxes" for n in sizes) + " | largest vs smallest N, p50 |",
             "|---|" + "---|" * len(sizes) + "---|"]
    names = [*r["sizes"][sizes[0]]["postfix"], *r["sizes"][sizes[0]]["dovecot"]]
    for name in dict.fromkeys(names):
        cells, figures = [], []
        for n in sizes:
            f = r["sizes"][n]["postfix"].get(name) or r["sizes"][n]["dovecot"].get(name)
            figures.append(f)
            cells.append(f"{f['p50_us']:.0f} / {f['p99_us']:.0f} ({f['p50_ratio']}x)")
        # as measured, and with each size's floor taken out (the machine drifts during a run)
        scale = figures[-1]["p50_us"] / figures[0]["p50_us"]
        relative = figures[-1]["p50_ratio"] / figures[0]["p50_ratio"]
        cells.append(f"{scale:.2f}x (against the floor: {relative:.2f}x)" if name != "SELECT 1" else f"{scale:.2f}x")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    if r["sizes"][sizes[0]].get("postmap"):
        lines += ["", "**Postfix's own client**, `postmap -q -` (keys per second):", "",
                  "| map | " + " | ".join(f"{int(n):,}" for n in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for name in r["sizes"][sizes[0]]["postmap"]:
            lines.append(f"| `{name}` | " + " | ".join(f"{r['sizes'][n]['postmap'][name]['keys_per_s']:,}"
                                                      for n in sizes) + " |")
    largest = sizes[-1]
    if r["sizes"][largest].get("plans"):
        lines += ["", f"**Plans** at {int(largest):,} mailboxes (`EXPLAIN (ANALYZE, BUFFERS)` of each lookup's first "
                  "keys, hits and misses, as the daemon's role; a lookup function's own statements show only in "
                  "the pages):", "", "| query | scans | pages read, at most | sequential scan of users or aliases |",
                  "|---|---|---|---|"]
        for name, f in r["sizes"][largest]["plans"].items():
            seq = "**yes**" if f["seq_scan_of_users_or_aliases"] else "no" if f["scans"] else "n/a: see the pages"
            lines.append(f"| `{name}` | {', '.join(f['scans']) or '(inside the function)'} | {f['max_pages']} | {seq} |")
    if r["sizes"][largest].get("postfixadmin"):
        lines += ["", f"**Round trips per recipient** at {int(largest):,} mailboxes: mailbook's `virtual.cf` + "
                  "`mailboxes.cf` next to PostfixAdmin's documented query set (three alias tables, two mailbox "
                  "tables, a self-alias per mailbox) on the same data, replaying Postfix's lookup order "
                  "(benchmarks/postfixadmin.py); p50 of the whole sequence, µs:", "",
                  "| recipient | mailbook: queries | PostfixAdmin: queries | mailbook p50 | PostfixAdmin p50 | "
                  "PostfixAdmin / mailbook |", "|---|---|---|---|---|---|"]
        for cls, f in r["sizes"][largest]["postfixadmin"].items():
            ours, theirs = f["mailbook"], f["postfixadmin"]
            lines.append(f"| {cls} | {ours['trips']:g} | {theirs['trips']:g} | {ours['p50_us']:.0f} | "
                         f"{theirs['p50_us']:.0f} | {f['ratio']}x |")
    lines += ["", "**Bulk import** of pre-hashed mailboxes (`mailbook import`), next to a bare COPY of the same rows (CSV) into a "
              "table with the same columns and only the primary key:", "",
              "| mailboxes | import | rows/s | bare COPY | ratio | then N/5 aliases |", "|---|---|---|---|---|---|"]
    for n in sizes:
        i = r["sizes"][n]["import"]
        lines.append(f"| {int(n):,} | {i['seconds']} s | {i['rows_per_s']:,} | {i['floor_seconds']} s | "
                     f"{i['ratio']}x | {i['alias_rows']:,} rows in {i['alias_seconds']} s |")
    a, g = r.get("add_mailbox", {}), r["migrate"]
    if a:
        lines += ["", f"**add_mailbox()** {a['add_mailbox_ms']} ms, bare `crypt(…, gen_salt('bf', {a['cost']}))` "
                      f"{a['bcrypt_ms']} ms: {a['ratio']}x (medians)."]
    lines += ["", f"**migrate apply**: {g['migrations']} migrations on an empty database {g['empty_s']} s; "
                  f"a no-op re-run {g['noop_s']} s.", ""]
    return "\n".join(lines)


def plot(r: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (scripts/bench.sh installs it): no plot", file=sys.stderr)
        return
    sizes = [int(n) for n in r["sizes"]]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    first = r["sizes"][str(sizes[0])]
    for group in ("postfix", "dovecot"):
        for name in first[group]:
            p50 = [r["sizes"][str(n)][group][name]["p50_us"] for n in sizes]
            p99 = [r["sizes"][str(n)][group][name]["p99_us"] for n in sizes]
            style = {"color": "black", "linewidth": 2.5} if name == "SELECT 1" else {}
            label = f"{name} (floor)" if name == "SELECT 1" else name
            if name == "SELECT 1" and group == "dovecot":
                continue
            line, = ax.plot(sizes, p50, marker="o", label=f"{label} p50", **style)
            ax.plot(sizes, p99, marker="x", linestyle="--", color=line.get_color(), alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("mailboxes")
    ax.set_ylabel("latency per lookup, µs (solid p50, dashed p99)")
    ax.set_title(f"mailbook lookups vs SELECT 1 — {r['machine']['cores']} cores, PostgreSQL {r['machine']['postgresql']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", default="1000,100000,1000000",
                        help="comma-separated sizes (default 1000,100000,1000000)")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="lookups per query and size")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "debian12-2core",
                        help="where results.json, results.md and latency.png go")
    args = parser.parse_args()
    sizes = sorted(int(s.replace("_", "")) for s in args.mailboxes.split(","))
    result = run(sizes, args.out, args.samples)
    print(markdown(result))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

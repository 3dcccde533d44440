#!/usr/bin/env python3
"""Compiled maps at the end-to-end benchmark's scale: speed next to hash:, and equivalence.

    scripts/bench.sh --compiled [--rounds 3] [--out benchmarks/results/<machine>]

1. Speed. The end-to-end benchmark's data (benchmarks/e2e.py: 100,064 mailboxes, 20,000
   aliases, an alias domain, a catch-all, a relay domain) in a private PostgreSQL;
   `mailbook maps compile` writes the lmdb: tables; two private Postfix instances take the
   e2e workloads in turns: static hash: files of the same data, and the compiled tables
   with the lines `mailbook maps postconf --compiled` prints. The figures are merged into
   the committed e2e.json as "compiled_run" (e2e.md gains its table); the rest of that
   file is left as the last whole run wrote it.
2. Equivalence. Rows the e2e data lacks are added through mailbook's API as mailadmin
   (disabled mailboxes, send-as grants, a catch-all next to mailboxes, an alias domain of
   the catch-all domain, an inactive domain and an inactive alias domain), then `mailbook
   maps compile` and `mailbook maps verify --dsn` (every compiled key and every key the
   database has, plus unknown local parts in every domain, through postmap -q on lmdb: and
   pgsql:) are timed. Results: compiled.json and compiled.md in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import psycopg

from benchmarks import e2e
from benchmarks.common import write_report
from benchmarks.e2e import Instance, PrivateCluster
from tests.harness.data import ALIAS_DOMAIN, BIG, BIG_MAILBOXES, CATCHALL, FILLER_DOMAINS, FILLER_EACH, numbered
from tests.harness.process import private_dir, remove

EXTRA_GRANTS_DOMAINS = 10   # d0..d9: every mailbox may send as shared<i>@ its domain
DISABLE_EVERY = 50          # every 50th mailbox of each filler domain is disabled
BIG_DISABLE_EVERY = 1000    # and every 1000th of BIG (its alias domain then refuses it too)


def add_rows_the_e2e_data_lacks(dsn: str) -> dict:
    """Through mailbook's API, as mailadmin; returns what was added."""
    added = {"disabled mailboxes": 0, "send-as grants": 0}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET ROLE mailadmin")
        with conn.transaction():
            for d in range(FILLER_DOMAINS):
                for i in range(0, FILLER_EACH, DISABLE_EVERY):
                    conn.execute("SELECT set_mailbox_active(%s, false)", (f"u{i}@d{d}.example.com",))
                    added["disabled mailboxes"] += 1
            for i in range(0, BIG_MAILBOXES, BIG_DISABLE_EVERY):
                conn.execute("SELECT set_mailbox_active(%s, false)", (f"{numbered(i + 7, 'm')}@{BIG}",))
                added["disabled mailboxes"] += 1
            for d in range(EXTRA_GRANTS_DOMAINS):
                for i in range(1, FILLER_EACH):
                    conn.execute("SELECT allow_send_as(%s, %s)",
                                 (f"u{i}@d{d}.example.com", f"shared{i % 20}@d{d}.example.com"))
                    added["send-as grants"] += 1
            for i in range(1, 200):  # grants written in the alias domain
                conn.execute("SELECT allow_send_as(%s, %s)", (f"{numbered(i, 'm')}@{BIG}", f"team{i}@{ALIAS_DOMAIN}"))
                added["send-as grants"] += 1
            # a catch-all in a domain with mailboxes, disabled ones among them
            conn.execute("SELECT add_alias('@d1.example.com', 'u1@d1.example.com')")
            # an alias domain of the catch-all domain: the catch-all reaches it too
            conn.execute("SELECT add_alias_domain('catchall-alias.example.net', %s)", (CATCHALL,))
            # an inactive domain with a mailbox and a catch-all; an inactive alias domain
            conn.execute("SELECT add_domain('dead.example.com')")
            conn.execute("SELECT add_mailbox('ghost@dead.example.com', 'ghost secret')")
            conn.execute("SELECT add_alias('@dead.example.com', 'ghost@dead.example.com')")
            conn.execute("SELECT set_domain_active('dead.example.com', false)")
            conn.execute("SELECT add_alias_domain('sleepy-alias.example.net', 'd2.example.com')")
            conn.execute("SELECT set_domain_active('sleepy-alias.example.net', false)")
        added.update({"catch-all next to mailboxes": "@d1.example.com",
                      "alias domain of the catch-all domain": "catchall-alias.example.net",
                      "inactive domain": "dead.example.com", "inactive alias domain": "sleepy-alias.example.net"})
        conn.execute("RESET ROLE")
        conn.execute("VACUUM ANALYZE")
    return added


def equivalence(cluster: PrivateCluster, work: Path, reader_pw: str) -> dict:
    maps = work / "mb-maps"
    e2e.mailbook_postfix(maps, cluster.port, "mail", reader_pw)  # installs the pgsql: map files
    added = add_rows_the_e2e_data_lacks(cluster.dsn("mail"))
    dest, compile_s = e2e.compile_maps(work, cluster.port, "mail", reader_pw)
    keys = json.loads((dest / "compiled.json").read_text())["keys"]
    print(f"equivalence: compiled {sum(keys.values()):,} keys in {compile_s:.1f} s", flush=True)
    reader = f"host=127.0.0.1 port={cluster.port} dbname=mail user=mailreader"
    verify_s, out = e2e.mailbook_cli(["maps", "verify", "--dest", str(dest), "--maps-dir", str(maps),
                                      "--config-dir", str(e2e.postmap_config(work)), "--dsn", reader,
                                      "--sample", "3"], reader_pw)  # exits 1 (SystemExit) on a difference
    compared = int(re.search(r"(\d+) key\(s\) compared", out).group(1))
    print(f"equivalence: verify compared {compared:,} keys in {verify_s:.1f} s, 0 differences", flush=True)
    with psycopg.connect(cluster.dsn("mail")) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM users WHERE NOT active),"
            " (SELECT count(*) FROM aliases), (SELECT count(*) FROM aliases WHERE alias LIKE '@%%'),"
            " (SELECT count(*) FROM transports WHERE alias_of IS NOT NULL), (SELECT count(*) FROM send_as)").fetchone()
    data = dict(zip(["mailboxes", "disabled mailboxes", "alias rows", "catch-alls", "alias domains",
                     "send-as grants"], counts))
    return {"data": data, "added": added, "compile_s": round(compile_s, 1), "keys": keys,
            "keys_total": sum(keys.values()), "verify_s": round(verify_s, 1), "compared": compared,
            "differences": 0, "verify_sample_per_domain": 3}


def markdown(r: dict) -> str:
    m, e = r["machine"], r["equivalence"]
    lines = ["# Compiled maps at scale: every key through postmap -q on lmdb: and pgsql:", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; Postfix {m['postfix']}, PostgreSQL {m['postgresql']}.", "",
             "Data: " + ", ".join(f"{v:,} {k}" for k, v in e["data"].items()) + ".", "",
             "| step | seconds | |", "|---|---|---|",
             f"| `mailbook maps compile` | {e['compile_s']} | {e['keys_total']:,} keys in {len(e['keys'])} tables |",
             f"| `mailbook maps verify --dsn --sample 3` | {e['verify_s']} | {e['compared']:,} keys compared, "
             f"{e['differences']} differences |", "",
             "Keys per table: " + ", ".join(f"{k} {v:,}" for k, v in e["keys"].items()) + "."]
    return "\n".join(lines) + "\n"


def merge_speed(out: Path, run: dict) -> None:
    """Into the committed whole run's e2e.json (its e2e.md regenerated from it)."""
    out.mkdir(parents=True, exist_ok=True)
    e2e_json = out / "e2e.json"
    if not e2e_json.exists():
        (out / "compiled-speed.json").write_text(json.dumps(run, indent=2) + "\n")
        print(f"no e2e.json in {out}: speed figures in compiled-speed.json", flush=True)
        return
    whole = json.loads(e2e_json.read_text())
    whole["compiled_run"] = run
    e2e_json.write_text(json.dumps(whole, indent=2) + "\n")
    (out / "e2e.md").write_text(e2e.markdown(whole))
    print("\n".join(e2e.compiled_markdown(whole)), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0, help="messages per run, as a share of the default")
    p.add_argument("--out", type=Path, default=e2e.ROOT / "benchmarks" / "results" / "local")
    p.add_argument("--skip-speed", action="store_true", help="only the equivalence check")
    p.add_argument("--skip-equivalence", action="store_true", help="only the speed runs (merged into e2e.json)")
    a = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("this benchmark runs Postfix, which needs root")
    work = private_dir("mailbook-compiled-")
    cluster = PrivateCluster(work / "pg", settings=["shared_buffers = 512MB", "max_wal_size = 4GB"])
    instances: list[Instance] = []
    try:
        cluster.start()
        t0 = time.perf_counter()
        reader_pw = e2e.build_mailbook(cluster, "mail")
        print(f"data loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        machine = {**e2e.machine(), "postgresql": version}
        if not a.skip_speed:
            dest, compile_s = e2e.compile_maps(work, cluster.port, "mail", reader_pw)
            instances = [Instance("hash", work / "hash", e2e.hash_postfix(work / "hash-maps")),
                         Instance("compiled", work / "compiled", e2e.compiled_postfix(dest),
                                  e2e.snippet_services(dest))]
            for inst in instances:
                inst.start()
                inst.send(f"m@{BIG}", 1, 300, False, False)  # warm
            run = e2e.compiled_run(e2e.throughput(instances, a.rounds, a.scale), a.rounds, compile_s)
            run["machine"] = machine
            for inst in instances:
                inst.stop()
            merge_speed(a.out, run)  # before the equivalence check: kept if that fails
        if a.skip_equivalence:
            return
        result = {"machine": machine, "equivalence": equivalence(cluster, work, reader_pw)}
    finally:
        for inst in instances:
            inst.stop()
        cluster.destroy()
        remove(work)
    write_report(a.out, "compiled", result, markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()

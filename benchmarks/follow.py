"""`mailbook maps follow`: seconds from the commit of add_mailbox to a real Postfix on the
compiled lmdb: tables accepting that recipient at RCPT, under a provisioning loop, on the
end-to-end benchmark's data (benchmarks/e2e.py: 100,000 mailboxes, 20,000 aliases, an
alias domain, a catch-all, 100 domains).

    .venv/bin/python -m benchmarks.follow [--seconds 150] [--interval 0.1] [--out benchmarks/results/<machine>]

One private PostgreSQL, `mailbook maps compile` once, one Postfix 3.7 whose maps are only
the compiled tables (`maps postconf --compiled`), and the follower as its own process
(`mailbook maps follow --poll 5`, as the systemd unit runs it). A provisioning loop adds
one mailbox every --interval seconds for --seconds (add_mailbox, and an alias to it every
third, each in its own transaction, as mailadmin; the mailboxes alternate between the
60,000-mailbox domain and the filler domains); after each commit a probe of its own asks
RCPT TO over SMTP every 10 ms until Postfix says 250, and that time is the latency. The
follower's own timing per batch is in its log. Also: what one postmap -r -i / -d of a key costs on the 100,000-key table.
Results: follow.json and follow.md in --out. Run as root (Postfix must).
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from benchmarks import e2e
from benchmarks.common import percentile
from mailbook.demo.cluster import PrivateCluster
from mailbook.postfix import compiled
from tests.harness.data import BIG, FILLER_DOMAINS, HASH, all_mailboxes
from tests.harness.process import ROOT, private_dir, remove


def rcpt(port: int, recipient: str) -> int:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.mail("sender@elsewhere.example")
        return s.rcpt(recipient)[0]


def postmap_cost(dest: Path, config: Path, n: int = 50) -> dict:
    """Seconds per `postmap -r -i` of one key, and per `postmap -d` of it, on the
    mailboxes table (one process each, as the follower runs them)."""
    table = f"lmdb:{dest}/mailboxes"
    put, delete = [], []
    for i in range(n):
        key = f"bench{i}@{BIG}"
        t0 = time.perf_counter()
        subprocess.run(["postmap", "-c", str(config), "-r", "-i", table], input=f"{key}\t{BIG}/bench{i}/\n",
                       text=True, check=True)
        put.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(["postmap", "-c", str(config), "-d", "-", table], input=f"{key}\n", text=True, check=True)
        delete.append(time.perf_counter() - t0)
    return {"put_one_key_ms": statistics.median(put) * 1000, "delete_one_key_ms": statistics.median(delete) * 1000}


def batches(log: Path) -> dict:
    """What the follower's log says of its batches: how many, keys changed, rebuilds."""
    import re
    text = log.read_text(errors="replace")
    found = re.findall(r"applied (\d+) key change\(s\) up to snapshot \S+ in ([0-9.]+) s", text)
    keys, seconds = [int(k) for k, _ in found], [float(t) for _, t in found]
    return {"count": len(keys), "median_keys": statistics.median(keys) if keys else 0,
            "max_keys": max(keys, default=0), "median_seconds": statistics.median(seconds) if seconds else 0,
            "p99_seconds": percentile(seconds, 99) if seconds else 0, "max_seconds": max(seconds, default=0),
            "rebuilds": text.count("rebuilt the changed tables")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=150, help="how long the provisioning loop runs")
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between two add_mailbox calls")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "debian12-2core")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: Postfix must")
    work = private_dir("mailbook-bench-follow-")
    cluster = PrivateCluster(work / "pg", settings=["shared_buffers = 256MB", "fsync = on"])
    follower = pf = None
    try:
        cluster.start()
        t0 = time.time()
        password = e2e.build_mailbook(cluster, "mail")
        loaded = time.time() - t0
        dest = work / "compiled"
        reader = f"host=127.0.0.1 port={cluster.port} dbname=mail user=mailreader"
        env = {**os.environ, "PGPASSWORD": password}
        settings = e2e.mailbook_postfix(work / "maps", cluster.port, "mail", password)
        parameters = {m.parameter for m in compiled.MAPS}
        settings.update({k: v for k, v in compiled.postconf_settings(dest, "virtual") if k in parameters})
        # every probe that gets a 250 opens a queue file and never delivers it: with the
        # default in_flow_delay (1 s) smtpd, short of flow-control tokens, waits a second
        # before each such 250 (measured: a 250 probe took 1.09 s, a 550 one 0.02 s)
        settings["in_flow_delay"] = "0s"
        pf = e2e.Instance("lmdb", work / "postfix", settings)
        mailbook = str(Path(sys.executable).parent / "mailbook")
        t0 = time.time()
        subprocess.run([mailbook, "maps", "compile", "--dest", str(dest), "--dsn", reader,
                        "--config-dir", str(pf.config)], env=env, check=True, capture_output=True)
        compile_seconds = time.time() - t0
        keys = compiled.read_state(dest)["keys"]
        pf.start()
        log = open(work / "follow.log", "w")
        follower = subprocess.Popen([mailbook, "maps", "follow", "--dest", str(dest), "--dsn", reader,
                                     "--config-dir", str(pf.config)], env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(3)  # it reads the 7 tables back (postmap -s) before its first batch
        cost = postmap_cost(dest, pf.config)

        latencies: list[float] = []
        failures: list[str] = []
        added = [0]

        rcpt_calls: dict[int, list[float]] = {250: [], 550: []}  # seconds per probe (connect to QUIT)

        def probe(recipient: str, committed: float) -> None:
            while True:
                try:
                    t0 = time.perf_counter()
                    code = rcpt(pf.port, recipient)
                    rcpt_calls.setdefault(code, []).append(time.perf_counter() - t0)
                    if code == 250:
                        latencies.append(time.perf_counter() - committed)
                        return
                except (OSError, smtplib.SMTPException):
                    pass
                if time.perf_counter() - committed > 30:
                    failures.append(recipient)
                    return
                time.sleep(0.01)

        probes: list[threading.Thread] = []
        with psycopg.connect(cluster.dsn("mail"), autocommit=True) as conn:
            conn.execute("SET ROLE mailadmin")
            start = time.perf_counter()
            i = 0
            while time.perf_counter() - start < args.seconds:
                due = start + i * args.interval
                if due > time.perf_counter():
                    time.sleep(due - time.perf_counter())
                domain = BIG if i % 2 == 0 else f"d{i % FILLER_DOMAINS}.example.com"
                recipient = f"new{i}@{domain}"
                conn.execute("SELECT add_mailbox_hashed(%s, %s)", (recipient, HASH))
                committed = time.perf_counter()
                t = threading.Thread(target=probe, args=(recipient, committed))
                t.start()
                probes.append(t)
                if i % 3 == 0:
                    conn.execute("SELECT add_alias(%s, %s)", (f"newalias{i}@{domain}", recipient))
                i += 1
            added[0] = i
        for t in probes:
            t.join()
        if failures:
            raise SystemExit(f"{len(failures)} recipients not accepted after 30 s; see {work}/follow.log")
        restarts = (pf.root / "maillog").read_text(errors="replace").count("has changed -- restarting")
        result = {
            "machine": e2e.machine(), "mailboxes_loaded": len(all_mailboxes()), "load_seconds": round(loaded, 1),
            "compile_seconds": round(compile_seconds, 2), "compiled_keys": keys,
            "measured": len(latencies), "interval_seconds": args.interval, "loop_seconds": args.seconds,
            "latency_seconds": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
                                "p99": percentile(latencies, 99), "max": max(latencies),
                                "mean": statistics.mean(latencies)},
            "rcpt_probe_seconds": {str(c): {"count": len(v), "median": statistics.median(v), "max": max(v)}
                                   for c, v in rcpt_calls.items() if v},
            "postmap": cost, "postfix_table_restarts": restarts,
            "follower_batches": batches(work / "follow.log"),
        }
    finally:
        if follower is not None:
            follower.terminate()
            follower.wait(timeout=20)
        if pf is not None:
            pf.stop()
        cluster.destroy()
        remove(work)  # its maps and Postfix's queue: 40 MB a run, left behind until now
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "follow.json").write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_seconds"]
    md = (f"# maps follow: commit of add_mailbox to RCPT 250 on the compiled tables\n\n"
          f"{result['mailboxes_loaded']:,} mailboxes loaded; a provisioning loop added one mailbox every"
          f" {args.interval} s (and an alias every third) for {args.seconds:.0f} s: {result['measured']} measured"
          f" from the commit of add_mailbox to RCPT TO answered 250 by Postfix on the followed tables.\n\n"
          f"| p50 | p95 | p99 | max | mean |\n|---|---|---|---|---|\n"
          f"| {lat['p50']:.3f} s | {lat['p95']:.3f} s | {lat['p99']:.3f} s | {lat['max']:.3f} s | {lat['mean']:.3f} s |\n\n"
          f"One RCPT probe (connect to QUIT): "
          + ", ".join(f"{c}: median {v['median']:.3f} s, max {v['max']:.3f} s ({v['count']} probes)"
                      for c, v in result["rcpt_probe_seconds"].items()) + ".\n\n"
          f"Follower batches: {result['follower_batches']['count']}, keys changed per batch: median"
          f" {result['follower_batches']['median_keys']}, max {result['follower_batches']['max_keys']}; seconds per"
          f" batch (snapshot, SQL, postmap): median {result['follower_batches']['median_seconds']},"
          f" p99 {result['follower_batches']['p99_seconds']}, max {result['follower_batches']['max_seconds']};"
          f" full rebuilds: {result['follower_batches']['rebuilds']}.\n\n"
          f"Full compile: {result['compile_seconds']} s. One key through postmap on the 100,000-key table:"
          f" put {cost['put_one_key_ms']:.1f} ms, delete {cost['delete_one_key_ms']:.1f} ms (process start and"
          f" one LMDB commit each). Postfix daemons restarted for a changed table: {restarts}.\n")
    (args.out / "follow.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

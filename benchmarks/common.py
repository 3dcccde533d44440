"""What every benchmark reports with its figures: percentiles and the machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import psycopg


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def machine(conn: psycopg.Connection | None = None) -> dict:
    """CPU, cores, memory, OS and Python; with conn, its PostgreSQL's version."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    out = {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "os": platform.platform(),
           "python": platform.python_version()}
    if conn is not None:
        out["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    return out


def write_report(out_dir: Path, stem: str, result: dict, markdown: str) -> None:
    """out_dir/stem.json (the figures) and out_dir/stem.md (their report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / f"{stem}.md").write_text(markdown)


def two_sides(baseline: str, into: Path, root: Path) -> dict[str, Path]:
    """The two versions a side-by-side run compares, by name: the baseline commit unpacked
    into `into` (git archive), and the work tree at root, named by HEAD's short hash
    (+changes when migrations/, sql/ or mailbook/ differ from it)."""
    archive = subprocess.run(["git", "archive", baseline], cwd=root, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                          text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "migrations", "sql", "mailbook"],
                                cwd=root, capture_output=True, text=True).stdout.strip())
    return {baseline: into, f"{head}{'+changes' if dirty else ''}": root}

"""Backup of a ~256 MiB PostgreSQL database vs ``pg_dump -Fc | gzip -6 | sha256sum``.

Both sides run against the same throwaway cluster (``tests/pg_helpers.py``: initdb + pg_ctl
on loopback, as the unprivileged ``postgres`` user when run as root), alternating,
``VOYAGR_BENCH_ROUNDS`` (3) times each; the medians are compared. Ours is
``BackupManager.create()`` in a fresh interpreter (``DATABASE_URL``): pg_dump's stdout
streamed through gzip + SHA-256 to disk *and* read whole by the checking ``pg_restore``
children (full read, table of contents, schema), then committed with its manifest. The peer
is the shell pipeline, which checks nothing.

Peak memory: the RSS growth of our Python process (``ru_maxrss`` against its RSS after
imports) and the largest RSS among its children (``RUSAGE_CHILDREN``: pg_dump or one
pg_restore); for the peer, the largest RSS among the pipeline's processes.

Run either way::

    .venv/bin/python -m pytest benchmarks/bench_backup_pg.py --benchmark-enable -s
    .venv/bin/python benchmarks/bench_backup_pg.py          # prints the table only

``VOYAGR_BENCH_PG_MIB`` (256) sets the table's size on disk (``pg_total_relation_size``):
``VOYAGR_BENCH_PG_MIB=16`` is a quick run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pg_helpers import PASSWORD, Cluster, cluster

MIB = 1024 * 1024
TARGET_MIB = int(os.environ.get("VOYAGR_BENCH_PG_MIB", "256"))
ROUNDS = int(os.environ.get("VOYAGR_BENCH_ROUNDS", "3"))

CHILD = r"""
import json, resource, sys, time
from voyagr_wsgi.backups import BackupManager, BackupSettings
from voyagr_wsgi.secret import Secret

def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

settings = BackupSettings(database_url=Secret(sys.argv[1]), backup_dir=sys.argv[2])
manager = BackupManager(settings)
base = rss_kib()
start = time.perf_counter()
made = manager.create()
elapsed = time.perf_counter() - start
print(json.dumps({
    "seconds": elapsed,
    "growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base,
    "children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "gz_bytes": made.gz_bytes,
    "db_bytes": made.db_bytes,
}))
"""

PEER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
subprocess.run(["bash", "-o", "pipefail", "-c", sys.argv[1]], check=True, capture_output=True)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def build(pg: Cluster) -> float:
    """The ``bench`` table grown to TARGET_MIB; its size in MiB."""
    pg.sql("CREATE DATABASE bench")
    pg.sql(
        "CREATE TABLE items (id bigint PRIMARY KEY, a text, b text, n int, at timestamptz)",
        "bench",
    )
    start = 0
    while True:
        size = int(pg.sql("SELECT pg_total_relation_size('items')", "bench"))
        if size >= TARGET_MIB * MIB:
            return size / MIB
        rows = max(10_000, min(500_000, (TARGET_MIB * MIB - size) // 120))
        pg.sql(
            "INSERT INTO items SELECT g, md5(g::text), md5((g * 7)::text) || ' trip', g % 1000, "
            f"now() - g * interval '1 second' FROM generate_series({start + 1}, {start + rows}) g",
            "bench",
        )
        start += rows


def run_ours(url: str, work: Path) -> dict[str, Any]:
    backups = work / "backups"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(backups)],
        check=True,
        capture_output=True,
        text=True,
    )
    subprocess.run(["rm", "-rf", str(backups)], check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_peer(pg: Cluster, work: Path) -> dict[str, Any]:
    pg_dump = os.path.join(pg.bin_dir, "pg_dump")
    out = work / "peer.dump.gz"
    command = (
        f'"{pg_dump}" -Fc --dbname="{pg.url("bench", password=False)}" '
        f'| gzip -6 > "{out}" && sha256sum "{out}"'
    )
    env = {**os.environ, "PGPASSWORD": PASSWORD}  # the peer only; ours uses a passfile
    done = subprocess.run(
        [sys.executable, "-c", PEER, command], check=True, capture_output=True, text=True, env=env
    )
    out.unlink()
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure() -> dict[str, Any]:
    with cluster() as pg, tempfile.TemporaryDirectory(prefix="voyagr-bench-pg-") as tmp:
        work = Path(tmp)
        built = time.perf_counter()
        table_mib = build(pg)
        build_s = time.perf_counter() - built
        peer: list[dict[str, Any]] = []
        ours: list[dict[str, Any]] = []
        for _ in range(ROUNDS):
            peer.append(run_peer(pg, work))
            ours.append(run_ours(pg.url("bench"), work))
    ours_s = statistics.median(r["seconds"] for r in ours)
    peer_s = statistics.median(r["seconds"] for r in peer)
    return {
        "table_mib": table_mib,
        "build_s": build_s,
        "archive_mib": ours[-1]["db_bytes"] / MIB,
        "gz_mib": ours[-1]["gz_bytes"] / MIB,
        "peer_s": peer_s,
        "ours_s": ours_s,
        "ratio": ours_s / peer_s,
        "growth_mib": max(r["growth_kib"] for r in ours) / 1024,
        "ours_child_mib": max(r["children_kib"] for r in ours) / 1024,
        "peer_child_mib": max(r["children_kib"] for r in peer) / 1024,
        "load_1m": os.getloadavg()[0],
        "all_peer_s": [r["seconds"] for r in peer],
        "all_ours_s": [r["seconds"] for r in ours],
    }


def _runs(r: dict[str, Any], side: str) -> str:
    return ", ".join(f"{t:.2f}" for t in r[f"all_{side}_s"])


def table(r: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"table on disk                          {r['table_mib']:8.1f} MiB "
            f"(archive {r['archive_mib']:.1f} MiB, gz {r['gz_mib']:.1f} MiB)",
            f"pg_dump -Fc | gzip -6 | sha256sum      {r['peer_s']:6.2f} s ({_runs(r, 'peer')})",
            f"voyagr BackupManager.create()          {r['ours_s']:6.2f} s ({_runs(r, 'ours')})",
            f"ratio of the medians                   {r['ratio']:6.2f}",
            f"peak RSS growth of our Python process  {r['growth_mib']:6.1f} MiB",
            f"largest child RSS, ours vs peer        {r['ours_child_mib']:6.1f} vs "
            f"{r['peer_child_mib']:.1f} MiB",
            f"load average during the run            {r['load_1m']:6.2f} (2 cores shared)",
        ]
    )


def test_postgresql_backup_of_256_mib(benchmark: Any) -> None:
    result = benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in result.items() if not k.startswith("all_")})
    print("\n" + table(result))
    assert result["growth_mib"] < 64


if __name__ == "__main__":
    print(table(measure()))

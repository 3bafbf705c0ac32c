"""wrk on loopback against gunicorn: the bare app, the bare app sending the stack's headers, the
full stack (memory store), the full stack (Redis store), alternately, in one run; optionally
the peer composite around the bare app (``peers``), and two real apps bare and composed: a
small Flask app (``flask``, ``flask-memory``) and the repo's demo, JSON over SQLite
(``demo``, ``demo-memory``, on ``GET /api/routes``).

::

    .venv/bin/python benchmarks/wrk/run.py                      # 2 rounds x 20 s per variant
    .venv/bin/python benchmarks/wrk/run.py --duration 60 --rounds 1   # the 60 s memory run
    .venv/bin/python benchmarks/wrk/run.py --variants bare,memory,no-metrics,no-ratelimit
    .venv/bin/python benchmarks/wrk/run.py --variants bare,memory,redis,redis-before \
        --before-src ../before/src               # the Redis stack of another checkout too

Each variant gets a fresh gunicorn (``--workers``, default 2) with benchmarks/wrk/gunicorn.conf.py
(the voyagr hooks, no access log) and ``wrk -t1 -c16 -dNs``. The rate limit is set far above
what the run can reach, so every non-2xx answer is an error. Worker RSS is read from /proc
after a warm-up and at the end of the timed run, and the workers' CPU time (user + system,
/proc) around it. Prints a Markdown table: median req/s over the rounds and its % of its
bare app's (the bare app, or for the pairs the Flask app or the demo without the stack), worker
CPU microseconds per request and the capacity it leaves (the bare app's CPU per request / the
variant's), errors, RSS start -> end per worker.

The workers import voyagr_wsgi from this checkout's ``src/`` (``--before-src``: the
``*-before`` variants from another checkout's, e.g. a worktree of an earlier commit).

The machine has 2 cores shared by gunicorn and wrk (and anything else running): absolute
numbers are indicative; compare with the bare app measured in the same run, alternately.
req/s is sensitive to other load on the machine; CPU per request much less so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from gunicorn_apps.harness import (  # noqa: E402
    free_port,
    gunicorn,
    redis_server,
    rss_kib,
)

COMMON_ENV = {
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMIT_REQUESTS": "100000000",
    "RATE_LIMIT_WINDOW_SECONDS": "60",
    "BACKUP_ENABLED": "false",
}


#: --variants no-<name>: the memory stack with one area switched off
ABLATIONS = {
    "metrics": {"METRICS_ENABLED": "false"},
    "accesslog": {"ACCESS_LOG_ENABLED": "false"},
    "requestid": {"REQUEST_ID_ENABLED": "false"},
    "ratelimit": {"RATE_LIMIT_ENABLED": "false"},
    "csrf": {"CSRF_ENABLED": "false"},
    "alerts": {"ALERTS_ENABLED": "false"},
}


@dataclass
class Sample:
    rps: float
    requests: int
    non_2xx: int
    socket_errors: int
    p99_ms: float
    rss_start: list[int] = field(default_factory=list)
    rss_end: list[int] = field(default_factory=list)
    cpu_us: float = 0.0  # worker CPU time (user + system) per request, microseconds
    redis_calls: int = -1  # script calls Redis served during the timed run (-1: no Redis)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (and its reaped children), from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12)) / ticks


def script_calls(url: str) -> int:
    """EVALSHA + EVAL calls Redis has served (``INFO commandstats``), -1 without Redis."""
    if not url.startswith("redis://"):
        return -1
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


def parse_wrk(output: str) -> tuple[float, int, int, int, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    p99_ms = 0.0
    if p99:
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return (
        rps,
        requests,
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
        p99_ms,
    )


def run_variant(
    name: str, app: str, env: dict[str, str], args: argparse.Namespace, workdir: str, path: str
) -> Sample:
    port = free_port()
    with gunicorn(
        app,
        port=port,
        env=env,
        workers=args.workers,
        log_dir=workdir,
        conf=os.path.join(HERE, "gunicorn.conf.py"),
    ) as server:
        url = f"http://127.0.0.1:{port}{path}"
        subprocess.run(
            [args.wrk, "-t1", f"-c{args.connections}", f"-d{args.warmup}s", url],
            check=True,
            capture_output=True,
        )
        workers = server.workers()
        rss_start = [rss_kib(pid) for pid in workers]
        redis_url = env.get("RATE_LIMIT_STORAGE", "")
        calls_start = script_calls(redis_url)
        cpu_start = sum(cpu_seconds(pid) for pid in workers)
        done = subprocess.run(
            [args.wrk, "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency", url],
            check=True,
            capture_output=True,
            text=True,
        )
        cpu_used = sum(cpu_seconds(pid) for pid in workers) - cpu_start
        calls_end = script_calls(redis_url)
        rss_end = [rss_kib(pid) if pid in server.workers() else 0 for pid in workers]
    sample = Sample(*parse_wrk(done.stdout), rss_start=rss_start, rss_end=rss_end)
    sample.cpu_us = 1e6 * cpu_used / max(1, sample.requests)
    if calls_start >= 0:
        sample.redis_calls = calls_end - calls_start
    print(
        f"  {name:<22} {sample.rps:>9.0f} req/s  non-2xx {sample.non_2xx}  "
        f"socket errors {sample.socket_errors}  p99 {sample.p99_ms:.1f} ms  "
        f"worker CPU {sample.cpu_us:.0f} us/req  "
        + (f"Redis calls {sample.redis_calls}  " if sample.redis_calls >= 0 else "")
        + f"RSS KiB {rss_start} -> {rss_end}",
        flush=True,
    )
    return sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per timed run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    parser.add_argument("--redis-server", default=shutil.which("redis-server") or "")
    parser.add_argument("--variants", default="bare,headers,memory,redis")
    parser.add_argument("--src", default=os.path.join(ROOT, "src"), help="voyagr_wsgi to run")
    parser.add_argument("--before-src", default="", help="the src/ of the *-before variants")
    args = parser.parse_args()
    chosen = args.variants.split(",")
    results: dict[str, list[Sample]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="voyagr-wrk-") as workdir:
        redis_port = free_port()
        demo_db = os.path.join(workdir, "demo.db")
        variants = {
            "bare": ("bare_app:application", {}),
            "headers": ("headers_app:application", {"RATE_LIMIT_STORAGE": "memory"}),
            "memory": ("bench_app:application", {"RATE_LIMIT_STORAGE": "memory"}),
            # the same pair around a small Flask app: the overhead a real app sees
            "flask": ("flask_app:application", {}),
            "flask-memory": ("flask_stack_app:application", {"RATE_LIMIT_STORAGE": "memory"}),
            # the repo's demo (JSON over SQLite, GET /api/routes), bare and composed
            "demo": ("demo_apps:bare", {"DATABASE_PATH": demo_db}),
            "demo-memory": ("demo_apps:stack", {"DATABASE_PATH": demo_db}),
            # the peer composite (ProxyFix + prometheus_client + secure + limits)
            "peers": ("peers_app:application", {}),
            "redis": (
                "bench_app:application",
                {"RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{redis_port}/0"},
            ),
            # the same two stacks from another checkout (--before-src)
            "memory-before": (
                "bench_app:application",
                {"RATE_LIMIT_STORAGE": "memory", "PYTHONPATH": f"{HERE}:{args.before_src}"},
            ),
            "redis-before": (
                "bench_app:application",
                {
                    "RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{redis_port}/0",
                    "PYTHONPATH": f"{HERE}:{args.before_src}",
                },
            ),
            # ablations: the memory stack without one area (--variants bare,memory,no-metrics)
            **{
                f"no-{name}": ("bench_app:application", {"RATE_LIMIT_STORAGE": "memory", **off})
                for name, off in ABLATIONS.items()
            },
        }
        if any(name.endswith("-before") for name in chosen) and not args.before_src:
            parser.error("the *-before variants need --before-src")
        redis_ctx = (
            redis_server(args.redis_server, redis_port, workdir)
            if any(name.startswith("redis") for name in chosen) and args.redis_server
            else None
        )
        if redis_ctx is not None:
            redis_ctx.__enter__()
        try:
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}/{args.rounds}", flush=True)
                for name in chosen:
                    app, extra = variants[name]
                    state = os.path.join(workdir, f"state-{name}-{round_no}")
                    env = {
                        **COMMON_ENV,
                        "PYTHONPATH": f"{HERE}:{args.src}",
                        **extra,
                        "VOYAGR_STATE_DIR": state,
                    }
                    path = "/api/routes" if name.startswith("demo") else "/"
                    results[name].append(run_variant(name, app, env, args, workdir, path))
                    time.sleep(1)
        finally:
            if redis_ctx is not None:
                redis_ctx.__exit__(None, None, None)
    print_table(results, args)
    return 0


def print_table(results: dict[str, list[Sample]], args: argparse.Namespace) -> None:
    labels = {
        "bare": "bare app",
        "headers": "bare app + the stack's response headers (static)",
        "memory": "full stack, memory store",
        "redis": "full stack, Redis store",
        "memory-before": "full stack, memory store (--before-src)",
        "redis-before": "full stack, Redis store (--before-src)",
        "flask": "Flask app (one JSON route)",
        "flask-memory": "Flask app + full stack, memory store",
        "demo": "demo app (JSON over SQLite, GET /api/routes)",
        "demo-memory": "demo app + full stack, memory store",
        "peers": "bare app + peer composite (ProxyFix, prometheus_client, secure, limits)",
        **{f"no-{name}": f"memory stack without {name}" for name in ABLATIONS},
    }

    def baseline(name: str) -> str:
        """The bare variant a variant is compared with: its own app without the stack."""
        for app in ("flask", "demo"):
            if name.startswith(app):
                return app
        return "bare"

    def median_of(name: str, what: str) -> float | None:
        samples = results.get(name)
        return statistics.median(getattr(s, what) for s in samples) if samples else None

    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s, gunicorn {args.workers} sync "
        f"workers, {args.rounds} alternating round(s), median req/s\n"
    )
    print(
        "| variant | req/s (median) | runs | % of its bare app | worker CPU us/req | "
        "CPU: % of its bare app's capacity | non-2xx | socket errors | p99 ms | "
        "worker RSS KiB start -> end | Redis calls per 1,000 requests |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for name, samples in results.items():
        rps = statistics.median(s.rps for s in samples)
        bare, bare_cpu = median_of(baseline(name), "rps"), median_of(baseline(name), "cpu_us")
        ratio = f"{100 * rps / bare:.1f} %" if bare else "-"
        runs = " / ".join(f"{s.rps:.0f}" for s in samples)
        last = samples[-1]
        rss = ", ".join(f"{a} -> {b}" for a, b in zip(last.rss_start, last.rss_end, strict=True))
        cpu = statistics.median(s.cpu_us for s in samples)
        capacity = f"{100 * bare_cpu / cpu:.1f} %" if bare_cpu else "-"
        per_k = [1000 * s.redis_calls / max(1, s.requests) for s in samples if s.redis_calls >= 0]
        calls = f"{statistics.median(per_k):.1f}" if per_k else "-"
        print(
            f"| {labels[name]} | {rps:.0f} | {runs} | {ratio} | {cpu:.0f} | {capacity} | "
            f"{sum(s.non_2xx for s in samples)} | {sum(s.socket_errors for s in samples)} | "
            f"{statistics.median(s.p99_ms for s in samples):.1f} | {rss} | {calls} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())

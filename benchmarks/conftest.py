"""Shared set-up for ``make bench``: one process, one run, the same 10,000 client environs.

Every WSGI benchmark drives its app over the same rotating pool of 10,000 environs (one
round = one pass over the pool, each environ copied first because layers may rewrite it) and
records the median time per request. :func:`pytest_terminal_summary` prints the table:
median per request, overhead over the bare app, and the ratio of that overhead to the peer
a user would otherwise assemble. See README.md.
"""

from __future__ import annotations

import ipaddress
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

N_CLIENTS = 10_000
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))
PAIRED = 5  # bare-app rounds timed before and after each row
PATHS = [f"/items/{i}" for i in range(20)]


def _environ(i: int, proxied: bool) -> dict[str, Any]:
    import io

    client = str(ipaddress.IPv4Address(0xC6120000 + i * 7))  # 198.18.0.0/15 (benchmarking)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATHS[i % len(PATHS)],
        "QUERY_STRING": "",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "example.com",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "text/html",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REMOTE_ADDR": client,
    }
    if proxied:  # behind a TLS-terminating proxy on 10.0.0.1 (a PaaS router)
        environ.update(
            {
                "REMOTE_ADDR": "10.0.0.1",
                "wsgi.url_scheme": "http",
                "SERVER_PORT": "80",
                "HTTP_X_FORWARDED_FOR": client,
                "HTTP_X_FORWARDED_PROTO": "https",
            }
        )
    return environ


#: direct clients over HTTPS (each layer alone) and the same clients behind a trusted proxy
DIRECT = [_environ(i, False) for i in range(N_CLIENTS)]
PROXIED = [_environ(i, True) for i in range(N_CLIENTS)]
CLIENT_KEYS = [e["REMOTE_ADDR"] for e in DIRECT]

BODY = [b"hello"]


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return BODY


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return _write


def _write(data: bytes) -> None:
    return None


def make_round(
    app: Callable[..., Iterable[bytes]], pool: list[dict[str, Any]]
) -> Callable[[], int]:
    """One pass over the pool: call, read, close, as a server would. Returns 429s seen."""
    sr = _start_response

    def one_round() -> int:
        for base in pool:
            body = app(dict(base), sr)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return 0

    return one_round


@dataclass
class Row:
    name: str
    group: str
    median_ns: float
    baseline: str | None = None  # the bare row this overhead is measured against
    peer: str | None = None  # the row this one is compared with
    note: str = ""
    unit: str = "ns/req"
    paired_bare_ns: float | None = None  # the bare app timed right before and after this row


@dataclass
class Results:
    rows: dict[str, Row] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows[row.name] = row

    def overhead(self, row: Row) -> float | None:
        if row.paired_bare_ns is not None:
            return row.median_ns - row.paired_bare_ns
        base = self.rows.get(row.baseline or "")
        return None if base is None else row.median_ns - base.median_ns


RESULTS = Results()


def run_wsgi(
    benchmark: Any,
    name: str,
    app: Any,
    pool: list[dict[str, Any]],
    *,
    group: str,
    baseline: str | None,
    peer: str | None = None,
    note: str = "",
) -> None:
    """Benchmark ``app`` over ``pool`` and record the median per request.

    The bare app is timed on the same pool just before and just after (``PAIRED`` rounds
    each), so a row's overhead is not skewed by load that came and went between rows on a
    shared machine.
    """
    one_round = make_round(app, pool)
    one_round()  # warm caches (per-client state, lazy imports)
    bare_round = make_round(bare_app, pool)
    bare = _time_rounds(bare_round, PAIRED)
    benchmark.group = group
    benchmark.extra_info["requests_per_round"] = len(pool)
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    bare += _time_rounds(bare_round, PAIRED)
    median_ns = benchmark.stats.stats.median / len(pool) * 1e9
    paired = statistics.median(bare) / len(pool) * 1e9 if baseline else None
    RESULTS.add(Row(name, group, median_ns, baseline, peer, note, paired_bare_ns=paired))
    benchmark.extra_info["paired_bare_ns_per_request"] = paired


def _time_rounds(one_round: Callable[[], int], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        one_round()
        times.append(time.perf_counter() - started)
    return times


def run_calls(
    benchmark: Any,
    name: str,
    fn: Callable[[], None],
    per_round: int,
    *,
    group: str,
    peer: str | None = None,
    note: str = "",
) -> None:
    """Benchmark a loop of ``per_round`` calls (decisions) and record the median per call."""
    fn()
    benchmark.group = group
    benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    median_ns = benchmark.stats.stats.median / per_round * 1e9
    RESULTS.add(Row(name, group, median_ns, None, peer, note, unit="ns/decision"))


@pytest.fixture
def results() -> Results:
    return RESULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from table import render

    if RESULTS.rows:
        terminalreporter.write_sep("=", "voyagr_wsgi benchmark summary")
        terminalreporter.write_line(render(RESULTS))

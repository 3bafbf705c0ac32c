"""Memory per tracked client (tracemalloc) at 1,000,000 clients, and flat past the key cap."""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from conftest import RESULTS, Row
from voyagr_wsgi.ratelimit import MemoryStore, Policy, Rate

POLICY = Policy.build("default", Rate(100, 60.0))


def client(i: int) -> str:
    """A distinct IPv4 address string, built the way a server builds REMOTE_ADDR."""
    return f"{(i >> 24) + 11}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def traced_bytes(fill: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = fill()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


def record(name: str, value: float, unit: str, note: str) -> None:
    RESULTS.add(Row(name, "6 memory", value, unit=unit, note=note))


def test_memory_per_client_at_one_million(benchmark: Any) -> None:
    n = 1_000_000
    interval, tolerance = POLICY.interval, POLICY.tolerance

    def fill_voyagr() -> MemoryStore:
        store = MemoryStore(max_keys=n)
        for i in range(n):
            store.update(client(i), interval, tolerance, 1)
        return store

    def fill_floor() -> dict[str, float]:
        now = time.monotonic()
        tats: dict[str, float] = {}
        for i in range(n):
            tats[client(i)] = now + interval
        return tats

    def measure() -> None:
        used, store = traced_bytes(fill_voyagr)
        assert len(store) == n
        record(
            "voyagr MemoryStore, 1M clients",
            used / n,
            "bytes/client",
            "key str + float TAT + dict slot",
        )
        del store
        used, tats = traced_bytes(fill_floor)
        record("plain dict str->float, 1M clients", used / n, "bytes/client", "the floor")
        del tats

    benchmark.group = "6 memory"
    benchmark.pedantic(measure, rounds=1, iterations=1)


def test_limits_memory_per_client(benchmark: Any) -> None:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter

    n = 100_000
    item = parse("100/minute")

    def fill() -> Any:
        limiter = FixedWindowRateLimiter(MemoryStorage())
        for i in range(n):
            limiter.hit(item, client(i))
        return limiter

    def measure() -> None:
        used, limiter = traced_bytes(fill)
        record("limits fixed window, 100k clients", used / n, "bytes/client", "")
        del limiter

    benchmark.group = "6 memory"
    benchmark.pedantic(measure, rounds=1, iterations=1)


def test_memory_flat_past_the_key_cap(benchmark: Any) -> None:
    cap, total = 100_000, 1_000_000
    interval, tolerance = POLICY.interval, POLICY.tolerance

    def measure() -> None:
        gc.collect()
        tracemalloc.start()
        try:
            store = MemoryStore(max_keys=cap)
            base = tracemalloc.get_traced_memory()[0]
            samples = {}
            for i in range(total):
                store.update(client(i), interval, tolerance, 1)
                if (i + 1) in (cap, 2 * cap, total // 2, total):
                    samples[i + 1] = tracemalloc.get_traced_memory()[0] - base
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()
        assert len(store) <= cap
        at_cap = samples[cap]
        record("MemoryStore cap 100k: MiB at 100k keys", at_cap / 2**20, "MiB", "")
        record(
            "MemoryStore cap 100k: MiB after 1M distinct",
            samples[total] / 2**20,
            "MiB",
            "MiB after 100k/200k/500k/1M inserts: "
            + "/".join(f"{v / 2**20:.1f}" for _, v in sorted(samples.items()))
            + f"; peak {peak / 2**20:.1f} MiB; {len(store):,} keys kept",
        )

    benchmark.group = "6 memory"
    benchmark.pedantic(measure, rounds=1, iterations=1)

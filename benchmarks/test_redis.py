"""The decision on a real redis-server (loopback): voyagr's RedisStore against `limits`, and
the RateLimit layer on the Redis store against the memory store, hot and cold clients.

One network round trip dominates a decision that asks Redis; the first rows show the Lua
script costs no more than `limits`' fixed window (``batch=1``: a round trip per decision).
The layer rows run ``RateLimit`` (10^9 per 60 s, every request allowed) over a pool of
10,000 environs: *hot*, one client hammered (the Redis store spends reserved units from
memory); *cold*, a new key for every request (``key=`` a counter, on both stores: a round
trip each on Redis, as before reservations); and the hot client on ``RedisStore(batch=1)``,
the behaviour before reservations. (2,000 clients in rotation are not cold: each comes back
every few tens of milliseconds and reserves more than one unit.) Skipped when redis-server
is not installed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import CLIENT_KEYS, DIRECT, bare_app, run_calls, run_wsgi

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tests"))
from gunicorn_apps.harness import free_port, redis_server
from voyagr_wsgi.ratelimit import Policy, Rate

KEYS = CLIENT_KEYS[:2000]
POLICY = Policy.build("default", Rate(1_000_000_000, 60.0))


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="voyagr-bench-redis-")
    try:
        with redis_server(binary, port, workdir):
            yield f"redis://127.0.0.1:{port}/0"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def voyagr_redis(url: str) -> tuple[Callable[[], None], Callable[[], None]]:
    from voyagr_wsgi.ratelimit.redis_store import RedisStore

    store = RedisStore(url, batch=1)  # a round trip per decision: the script's own cost
    update, interval, tolerance = store.update, POLICY.interval, POLICY.tolerance

    def run() -> None:
        for key in KEYS:
            update(key, interval, tolerance, 1)

    return run, store.close


def limits_redis(url: str) -> tuple[Callable[[], None], Callable[[], None]]:
    from limits import parse
    from limits.storage import RedisStorage
    from limits.strategies import FixedWindowRateLimiter

    storage = RedisStorage(url)
    limiter = FixedWindowRateLimiter(storage)
    item = parse("1000000000/minute")

    def run() -> None:
        for key in KEYS:
            limiter.hit(item, key)

    return run, lambda: None


CANDIDATES = {
    "voyagr RedisStore.update (loopback)": (voyagr_redis, "limits redis fixed hit"),
    "limits redis fixed hit": (limits_redis, None),
}


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_redis_decision(benchmark: Any, redis_url: str, name: str) -> None:
    factory, peer = CANDIDATES[name]
    run, close = factory(redis_url)
    try:
        run_calls(
            benchmark,
            name,
            run,
            len(KEYS),
            group="5 decision",
            peer=peer,
            note="2,000 keys, one round trip each",
        )
    finally:
        close()


HOT_POOL = [DIRECT[0]] * 10_000  # one client hammered
COLD_POOL = DIRECT[:2000]  # with a new key per request (see the layer's key= below)

#: name -> (store, pool, peer); "memory" and "redis" stores, the peer row is the memory one
LAYER_ROWS = {
    "RateLimit, MemoryStore, hot client": ("memory", HOT_POOL, None),
    "RateLimit, RedisStore, hot client": ("redis", HOT_POOL, "RateLimit, MemoryStore, hot client"),
    "RateLimit, RedisStore batch=1 (before), hot client": (
        "redis batch=1",
        HOT_POOL,
        "RateLimit, MemoryStore, hot client",
    ),
    "RateLimit, MemoryStore, cold clients": ("memory", COLD_POOL, None),
    "RateLimit, RedisStore, cold clients": (
        "redis",
        COLD_POOL,
        "RateLimit, MemoryStore, cold clients",
    ),
}


@pytest.mark.parametrize("name", list(LAYER_ROWS))
def test_ratelimit_layer_on_redis_and_memory(benchmark: Any, redis_url: str, name: str) -> None:
    from voyagr_wsgi.ratelimit.layer import RateLimit
    from voyagr_wsgi.ratelimit.memory import MemoryStore
    from voyagr_wsgi.ratelimit.redis_store import RedisStore

    kind, pool, peer = LAYER_ROWS[name]
    store: Any = MemoryStore()
    if kind.startswith("redis"):
        store = RedisStore(redis_url, batch=1 if kind.endswith("=1") else 0)
        store.clear()
    fresh = None
    if pool is COLD_POOL:
        counter = itertools.count()
        fresh = lambda environ: f"cold-{next(counter)}"  # noqa: E731
    app = RateLimit(bare_app, "1000000000/60s", store=store, key=fresh)
    calls = getattr(store, "calls", 0)
    try:
        run_wsgi(
            benchmark,
            name,
            app,
            pool,
            group="6 ratelimit store",
            baseline="bare (direct)",
            peer=peer,
            note="a new key per request" if fresh else "one client",
        )
    finally:
        if kind.startswith("redis"):
            made = store.calls - calls
            benchmark.extra_info["redis_calls"] = made
            print(f"\n{name}: {made} Redis round trips")
            store.clear()
            store.close()

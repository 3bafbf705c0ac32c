"""The decision on a real redis-server (loopback): voyagr's RedisStore against `limits`.

One network round trip dominates both; this shows the Lua script costs no more than
`limits`' fixed window. Skipped when redis-server is not installed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conftest import CLIENT_KEYS, run_calls

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

    store = RedisStore(url)
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

"""The rate-limit decision alone: voyagr's MemoryStore against `limits` and a dict GCRA floor.

10,000 client keys round-robin, every decision allowed (limit far above the rate), the same
key strings for every candidate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from conftest import CLIENT_KEYS, run_calls
from voyagr_wsgi.ratelimit import MemoryStore, Policy, Rate

POLICY = Policy.build("default", Rate(1_000_000_000, 60.0))


def voyagr_decision() -> Callable[[], None]:
    update = MemoryStore().update
    interval, tolerance, keys = POLICY.interval, POLICY.tolerance, CLIENT_KEYS

    def run() -> None:
        for key in keys:
            update(key, interval, tolerance, 1)

    return run


def dict_gcra_floor() -> Callable[[], None]:
    """The 15-line GCRA of the reference research (dict, lock, time.monotonic)."""
    tats: dict[str, float] = {}
    lock = threading.Lock()
    interval, tolerance, keys = POLICY.interval, POLICY.tolerance, CLIENT_KEYS
    now_fn = time.monotonic

    def decide(key: str) -> bool:
        now = now_fn()
        with lock:
            tat = tats.get(key, now)
            new = max(tat, now) + interval
            if new - tolerance > now:
                return False
            tats[key] = new
            return True

    def run() -> None:
        for key in keys:
            decide(key)

    return run


def limits_decision(strategy: str, with_stats: bool) -> Callable[[], None]:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    cls = FixedWindowRateLimiter if strategy == "fixed" else MovingWindowRateLimiter
    limiter = cls(MemoryStorage())
    item = parse("1000000000/minute" if strategy == "fixed" else "100000/minute")
    keys = CLIENT_KEYS

    def run() -> None:
        for key in keys:
            limiter.hit(item, key)
            if with_stats:
                limiter.get_window_stats(item, key)

    return run


CANDIDATES: dict[str, tuple[Callable[[], Callable[[], None]], str | None]] = {
    "voyagr MemoryStore.update": (voyagr_decision, "limits fixed hit"),
    "dict GCRA floor": (dict_gcra_floor, None),
    "limits fixed hit": (lambda: limits_decision("fixed", False), None),
    "limits fixed hit+stats": (lambda: limits_decision("fixed", True), None),
    "limits moving hit": (lambda: limits_decision("moving", False), None),
}


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_decision(benchmark: Any, name: str) -> None:
    factory, peer = CANDIDATES[name]
    run_calls(benchmark, name, factory(), len(CLIENT_KEYS), group="5 decision", peer=peer)

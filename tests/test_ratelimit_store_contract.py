"""One contract for every rate-limit store (memory and a real redis-server).

Each store is driven through ``advance(seconds)``: the memory store's fake clock moves; on
Redis every stored TAT is moved back by the same amount (Redis's own clock cannot be faked),
which is the same thing for GCRA, and the RedisStore's local clock (its leases and cached
denials) moves forward. Decisions are compared with the pure model ``gcra.step``. Redis runs
twice: with reservations (the default) and with ``batch=1`` (a round trip per decision).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from conftest import free_port
from ratelimit_helpers import FakeClock, RedisServer
from voyagr_wsgi.ratelimit import MemoryStore, Policy, Rate, Store
from voyagr_wsgi.ratelimit.gcra import step


@dataclass
class Harness:
    store: Any
    advance: Callable[[float], None]
    size: Callable[[], int]
    kind: str


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "redis", "redis batch=1"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    clock = FakeClock()
    if request.param == "memory":
        store = MemoryStore(now=clock)
        yield Harness(store, clock.advance, lambda: len(store), "memory")
        return
    from voyagr_wsgi.ratelimit.redis_store import RedisStore

    server: RedisServer = request.getfixturevalue("redis_srv")
    batch = 1 if request.param == "redis batch=1" else 0
    rstore = RedisStore(server.url, now=clock, batch=batch)
    rstore.clear()
    client = rstore._client

    def advance(seconds: float) -> None:
        clock.advance(seconds)
        for key in client.scan_iter(match="vy:rl:*"):
            tat = client.get(key)
            if tat is not None:
                client.set(key, int(tat) - round(seconds * 1e6), keepttl=True)

    def size() -> int:
        return sum(1 for _ in client.scan_iter(match="vy:rl:*"))

    try:
        yield Harness(rstore, advance, size, "redis")
    finally:
        rstore.clear()
        rstore.close()


POLICY = Policy.build("default", Rate(5, 10.0))  # T = 2 s, burst 5


def decide(h: Harness, key: str, cost: int = 1, policy: Policy = POLICY) -> tuple[bool, float]:
    result: tuple[bool, float] = h.store.update(key, policy.interval, policy.tolerance, cost)
    return result


def test_every_store_satisfies_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.store, Store)


@pytest.mark.parametrize(
    ("quota", "window", "burst"),
    [
        pytest.param(5, 10.0, None, id="5/10s, burst = quota"),
        pytest.param(100, 60.0, None, id="100/60s, burst = quota"),
        pytest.param(10, 10.0, 3, id="10/10s, burst 3"),
        pytest.param(1, 3600.0, None, id="1/hour"),
    ],
)
def test_fresh_key_gets_exactly_the_burst_then_is_denied(
    harness: Harness, quota: int, window: float, burst: int | None
) -> None:
    policy = Policy.build("p", Rate(quota, window), burst)
    results = [decide(harness, "k", policy=policy)[0] for _ in range(policy.burst + 3)]
    assert results == [True] * policy.burst + [False] * 3


def test_offsets_report_the_tat_relative_to_now(harness: Harness) -> None:
    # Redis reads its own clock: allow for real time passing between calls on a busy machine
    allowed, offset = decide(harness, "k")
    assert allowed and offset == pytest.approx(2.0, abs=0.25)
    for _ in range(4):
        decide(harness, "k")
    allowed, offset = decide(harness, "k")
    assert not allowed and offset == pytest.approx(10.0, abs=0.25)
    assert POLICY.retry_after(offset, 1) == 2


def test_two_keys_have_independent_budgets(harness: Harness) -> None:
    assert [decide(harness, "a")[0] for _ in range(6)] == [True] * 5 + [False]
    assert [decide(harness, "b")[0] for _ in range(6)] == [True] * 5 + [False]


def test_budget_refills_one_unit_per_interval(harness: Harness) -> None:
    for _ in range(5):
        decide(harness, "k")
    assert not decide(harness, "k")[0]
    harness.advance(2.05)
    assert decide(harness, "k")[0]
    assert not decide(harness, "k")[0]
    harness.advance(10.1)
    assert [decide(harness, "k")[0] for _ in range(6)] == [True] * 5 + [False]


@pytest.mark.parametrize(
    ("costs", "expected"),
    [
        pytest.param([3, 2, 1], [True, True, False], id="3+2 fill a burst of 5"),
        pytest.param([3, 3, 2], [True, False, True], id="a denied cost writes nothing"),
        pytest.param([6], [False], id="cost above the burst never fits"),
        pytest.param([0, 0, 5], [True, True, True], id="cost 0 peeks"),
    ],
)
def test_cost_consumes_that_many_units(
    harness: Harness, costs: list[int], expected: list[bool]
) -> None:
    assert [decide(harness, "k", cost)[0] for cost in costs] == expected


def test_peek_and_denial_never_create_a_key(harness: Harness) -> None:
    decide(harness, "peek", 0)
    decide(harness, "huge", 6)
    assert harness.size() == 0


def test_clear_forgets_every_key(harness: Harness) -> None:
    for _ in range(5):
        decide(harness, "k")
    harness.store.clear()
    assert decide(harness, "k")[0]


# (advance seconds, key, cost) sequences; the model and the store must agree on every step
SEQUENCES = {
    "steady at the rate": [(2.0, "a", 1)] * 8,
    "burst, wait, burst": [(0, "a", 1)] * 6 + [(5.0, "a", 1)] * 1 + [(0, "a", 1)] * 3,
    "mixed costs and keys": [
        (0, "a", 2),
        (0, "b", 4),
        (1.0, "a", 3),
        (0, "a", 1),
        (3.0, "b", 2),
        (0, "b", 1),
        (7.0, "a", 5),
        (0.5, "a", 1),
    ],
    "idle longer than the window": [(0, "a", 5), (100.0, "a", 5), (0, "a", 1)],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_store_agrees_with_the_pure_gcra_model(harness: Harness, name: str) -> None:
    now = 0.0
    tats: dict[str, float | None] = {}
    for dt, key, cost in SEQUENCES[name]:
        if dt:
            harness.advance(dt)
            now += dt
        ok, new_tat, offset = step(tats.get(key), now, POLICY.interval, POLICY.tolerance, cost)
        tats[key] = new_tat
        got, got_offset = decide(harness, key, cost)
        assert got == ok, (dt, key, cost)
        assert got_offset == pytest.approx(offset, abs=0.25), (dt, key, cost)


def test_many_threads_on_one_key_never_exceed_the_budget(harness: Harness) -> None:
    policy = Policy.build("p", Rate(40, 3600.0))  # one unit per 90 s: no refill mid-test
    granted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = [decide(harness, "hot", policy=policy)[0] for _ in range(15)]
        with lock:
            granted.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 120 and granted.count(True) == 40


def test_update_many_is_all_or_nothing(harness: Harness) -> None:
    # stacked limits "2/1s;3/60s": every policy must allow; a denial writes nothing
    fast, slow = Policy.build("d", Rate(2, 1.0)), Policy.build("d-2", Rate(3, 60.0))
    items = [("", fast.interval, fast.tolerance), (":d-2", slow.interval, slow.tolerance)]
    store = harness.store
    assert [store.update_many("c", items, 1)[0] for _ in range(3)] == [True, True, False]
    allowed, offsets = store.update_many("c", items, 0)  # a peek: the denial wrote nothing
    assert allowed and slow.remaining(offsets[1]) == 1 and fast.remaining(offsets[0]) == 0
    harness.advance(1.0)
    assert store.update_many("c", items, 1)[0] is True  # the third of the 60 s budget
    harness.advance(1.0)
    denied, offsets = store.update_many("c", items, 1)
    assert denied is False and fast.remaining(offsets[0]) == 2 and slow.remaining(offsets[1]) == 0
    # the first policy's key is the single-policy key: removing a stacked rate keeps budgets
    assert store.update("c", fast.interval, fast.tolerance, 0)[1] == pytest.approx(offsets[0])

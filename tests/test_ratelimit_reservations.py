"""RedisStore's reservations on a real redis-server: grants spent from memory, leases, cached
denials, adaptive sizes, stacked grants, truthful offsets, outages, and a property test that
W workers sharing one budget never admit more than GCRA allows on Redis's clock.

The store's local clock is a FakeClock; Redis's clock cannot be faked, so where a test needs
time to pass on Redis too, every TAT is moved back by the same amount (``shift``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import call, free_port, hello_app, make_environ
from ratelimit_helpers import FakeClock, RedisServer, redis_server
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.errors import ConfigurationError, StorageError
from voyagr_wsgi.ratelimit import Policy, Rate
from voyagr_wsgi.ratelimit.layer import RateLimit
from voyagr_wsgi.ratelimit.redis_store import RedisStore
from voyagr_wsgi.ratelimit.reservations import Reservations

pytestmark = pytest.mark.system

HOT = Policy.build("default", Rate(10_000, 60.0))  # T = 6 ms, burst 10,000: cap 625
SMALL = Policy.build("default", Rate(5, 10.0))  # T = 2 s, burst 5: cap 1 (exact)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server(free_port()) as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(server: RedisServer, clock: FakeClock) -> Iterator[RedisStore]:
    made = RedisStore(server.url, now=clock)
    made.clear()
    try:
        yield made
    finally:
        made.clear()
        made.close()


def tat_offset(store: RedisStore, key: str) -> float:
    """Redis's ``TAT - now`` for ``key`` in seconds (0 when absent), read with Redis's clock."""
    client = store._client
    raw = client.get(f"vy:rl:{{{key}}}")
    seconds, micros = client.time()
    return 0.0 if raw is None else max(0.0, (int(raw) - (seconds * 1_000_000 + micros)) / 1e6)


def shift(store: RedisStore, seconds: float) -> None:
    """Let ``seconds`` pass on Redis for GCRA: every TAT moves back by that much."""
    client = store._client
    for key in client.scan_iter(match="vy:rl:*"):
        tat = client.get(key)
        if tat is not None:
            client.set(key, int(tat) - round(seconds * 1e6), keepttl=True)


def decide(store: RedisStore, key: str, policy: Policy = HOT, cost: int = 1) -> tuple[bool, float]:
    return store.update(key, policy.interval, policy.tolerance, cost)


def test_a_cold_key_reserves_exactly_its_cost(store: RedisStore, clock: FakeClock) -> None:
    for _ in range(3):  # one request a minute: every one asks Redis for exactly one unit
        calls = store.calls
        assert decide(store, "cold")[0]
        assert store.calls == calls + 1
        assert tat_offset(store, "cold") == pytest.approx(0.006, abs=0.002)
        assert store.local.get("cold").held == 0  # type: ignore[union-attr]
        clock.advance(60.0)
        shift(store, 60.0)


def test_a_hot_key_grows_its_grant_by_doubling_up_to_its_rate_times_the_lease(
    store: RedisStore, clock: FakeClock
) -> None:
    sizes = []
    for _ in range(2000):  # 1,000 requests/s on the local clock
        calls = store.calls
        assert decide(store, "hot")[0]
        if store.calls > calls:
            sizes.append(store.local.get("hot").held + 1)  # type: ignore[union-attr]
        clock.advance(0.001)
    # 1, 2, 4 ... then the rate x lease (1,000/s x 0.5 s), well under the cap of 625
    assert sizes[:4] == [1, 2, 4, 8]
    assert max(sizes) <= 500 and sizes[-1] >= 400
    assert len(sizes) <= 20  # 2,000 decisions, at most 20 round trips


def test_units_held_are_spent_without_a_round_trip(store: RedisStore, clock: FakeClock) -> None:
    for _ in range(4):
        decide(store, "k")
        clock.advance(0.001)
    held = store.local.get("k").held  # type: ignore[union-attr]
    calls = store.calls
    assert held > 0
    assert all(decide(store, "k")[0] for _ in range(held))
    assert store.calls == calls
    decide(store, "k")
    assert store.calls == calls + 1


def test_an_expired_grant_drops_its_units(store: RedisStore, clock: FakeClock) -> None:
    for _ in range(6):
        decide(store, "k")
        clock.advance(0.001)
    grant = store.local.get("k")
    assert grant is not None and grant.held > 0
    debited = tat_offset(store, "k")
    clock.advance(0.5)  # the lease: min(0.5 s, tau / 10 = 6 s)
    calls = store.calls
    assert decide(store, "k")[0]
    assert store.calls == calls + 1  # the old units are gone: Redis is asked again
    # nothing was given back: Redis's TAT only grew (a refund could hand units out twice)
    assert tat_offset(store, "k") >= debited - 0.05


def test_the_lease_is_at_most_a_tenth_of_the_burst(server: RedisServer) -> None:
    store = RedisStore(server.url, lease_s=5.0)
    one_s = Policy.build("p", Rate(100, 1.0))  # tau = 1 s: lease 0.1 s
    assert store.local.lease(((one_s.interval, one_s.tolerance),)) == pytest.approx(0.1, rel=1e-5)
    assert store.local.lease(((HOT.interval, HOT.tolerance),)) == 5.0


def test_a_denied_client_is_answered_from_memory_until_its_retry_time(
    store: RedisStore, clock: FakeClock
) -> None:
    assert [decide(store, "d", SMALL)[0] for _ in range(5)] == [True] * 5
    calls = store.calls
    # the fifth grant's offset (10 s, the whole burst) already says the sixth cannot fit
    allowed, offset = decide(store, "d", SMALL)
    assert not allowed and offset == pytest.approx(10.0, abs=0.1)
    assert store.calls == calls
    seen = []
    for _ in range(4):  # the same denial, its offset going down with the local clock
        clock.advance(0.4)
        allowed, offset = decide(store, "d", SMALL)
        assert not allowed
        seen.append(offset)
    assert store.calls == calls
    assert seen == pytest.approx([9.6, 9.2, 8.8, 8.4], abs=0.1)
    assert SMALL.retry_after(seen[-1], 1) == 1  # 429's Retry-After from the cached offset
    clock.advance(0.5)  # past the retry time on both clocks: Redis decides again
    shift(store, 2.1)
    assert decide(store, "d", SMALL)[0]
    assert store.calls == calls + 1
    # denied by Redis itself (another worker spent the unit): cached the same way
    other_clock = FakeClock()
    other = RedisStore(store.url, batch=1, now=other_clock)
    try:
        assert other.update("d", SMALL.interval, SMALL.tolerance, 1)[0] is False
        clock.advance(2.1)
        other_clock.advance(2.1)
        shift(store, 2.1)
        assert other.update("d", SMALL.interval, SMALL.tolerance, 1)[0] is True
        allowed, offset = decide(store, "d", SMALL)
        assert not allowed and store.calls == calls + 2
        assert decide(store, "d", SMALL) == (False, pytest.approx(offset, abs=0.01))
        assert store.calls == calls + 2
    finally:
        other.close()


def test_fields_are_redis_remaining_plus_the_units_held(
    store: RedisStore, server: RedisServer, clock: FakeClock
) -> None:
    peeker = RedisStore(server.url, batch=1)  # another worker, holding nothing
    try:
        for _ in range(40):
            allowed, offset = decide(store, "f")
            assert allowed
            clock.advance(0.001)
        held = store.local.get("f").held  # type: ignore[union-attr]
        assert held > 0
        redis_left = HOT.remaining(peeker.update("f", HOT.interval, HOT.tolerance, 0)[1])
        assert HOT.remaining(offset) == pytest.approx(redis_left + held, abs=2)
        assert HOT.remaining(offset) == pytest.approx(HOT.burst - 40, abs=2)
        # a peek through the holding store is exact for this worker: Redis's, less its held
        peeked = store.update("f", HOT.interval, HOT.tolerance, 0)
        assert peeked[0] and HOT.remaining(peeked[1]) == pytest.approx(HOT.burst - 40, abs=2)
    finally:
        peeker.close()


def test_remaining_never_exceeds_the_burst(store: RedisStore, clock: FakeClock) -> None:
    for _ in range(50):
        allowed, offset = decide(store, "b")
        assert allowed and HOT.remaining(offset) <= HOT.burst - 1
        clock.advance(0.0001)


def test_the_cap_is_at_most_half_the_burst(server: RedisServer) -> None:
    store = RedisStore(server.url, batch=10_000, now=FakeClock())
    policy = Policy.build("p", Rate(40, 3600.0))
    try:
        store.clear()
        grants = []
        for _ in range(40):
            calls = store.calls
            assert decide(store, "c", policy)[0]
            if store.calls > calls:
                grants.append(store.local.get("c").held + 1)  # type: ignore[union-attr]
        assert max(grants) <= 20 and sum(grants) == 40
        assert not decide(store, "c", policy)[0]
    finally:
        store.clear()
        store.close()


def test_batch_one_asks_redis_for_every_allowed_request(server: RedisServer) -> None:
    store = RedisStore(server.url, batch=1, now=FakeClock())
    try:
        store.clear()
        for _ in range(20):
            decide(store, "one")
        assert store.calls == 20 and store.local.get("one").held == 0  # type: ignore[union-attr]
    finally:
        store.clear()
        store.close()


def test_stacked_policies_reserve_the_same_units_on_every_key(
    store: RedisStore, clock: FakeClock
) -> None:
    fast, slow = HOT, Policy.build("d-2", Rate(30, 3600.0))  # slow: cap min(1, 15) = 1
    items = [("", fast.interval, fast.tolerance), (":d-2", slow.interval, slow.tolerance)]
    client = store._client
    results = []
    for _ in range(32):
        results.append(store.update_many("s", items, 1)[0])
        clock.advance(0.001)
    assert results == [True] * 30 + [False] * 2
    fast_tat, slow_tat = int(client.get("vy:rl:{s}")), int(client.get("vy:rl:{s}:d-2"))
    # both keys debited the same 30 units: their TATs sit 30 intervals apart from "now"
    assert (slow_tat - fast_tat) / 1e6 == pytest.approx(30 * (slow.interval - fast.interval), abs=1)
    hot = Policy.build("h-2", Rate(20_000, 3600.0))  # both hot: grants grow, one per call
    items = [("", fast.interval, fast.tolerance), (":h-2", hot.interval, hot.tolerance)]
    calls = store.calls
    for _ in range(300):
        assert store.update_many("t", items, 1)[0]
        clock.advance(0.001)
    assert store.calls - calls < 20
    grant = store.local.get("t")
    assert grant is not None
    spent = 300 + grant.held  # debited on Redis: spent here plus held here
    assert tat_offset(store, "t") == pytest.approx(spent * fast.interval, abs=0.05)
    assert int(client.get("vy:rl:{t}:h-2")) - int(client.get("vy:rl:{t}")) == pytest.approx(
        spent * (hot.interval - fast.interval) * 1e6, abs=50_000
    )


def test_a_script_flushed_mid_run_is_reloaded(store: RedisStore, clock: FakeClock) -> None:
    for _ in range(20):
        assert decide(store, "n")[0]
        clock.advance(0.001)
    store._client.script_flush()
    for _ in range(200):
        assert decide(store, "n")[0]
        clock.advance(0.001)
    assert store.failures == 0


def test_bad_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="batch"):
        RedisStore(batch=-1)
    with pytest.raises(ConfigurationError, match="lease_s"):
        RedisStore(lease_s=0.0)
    with pytest.raises(ConfigurationError, match="max_keys"):
        RedisStore(max_keys=0)


def test_local_state_is_bounded(server: RedisServer) -> None:
    store = RedisStore(server.url, max_keys=64, now=FakeClock())
    try:
        for i in range(300):
            decide(store, f"client-{i}")
        assert len(store.local) <= 64
    finally:
        store.clear()
        store.close()


def test_settings_reach_the_store(server: RedisServer) -> None:
    stack: Any = compose(
        hello_app,
        Settings.from_env(
            {"ALLOWED_HOSTS": "example.com", "RATE_LIMIT_STORAGE": server.url,
             "RATE_LIMIT_REDIS_BATCH": "3", "RATE_LIMIT_REDIS_LEASE_SECONDS": "0.2",
             "BACKUP_ENABLED": "false", "ALERTS_ENABLED": "false"}
        ),
    )  # fmt: skip
    store = stack.components["ratelimit"]
    assert (store.local.batch, store.local.lease_s) == (3, 0.2)
    store.close()


# -- Redis down mid-run ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "after"),
    [
        pytest.param("open", 200, id="open: served once the held units run out"),
        pytest.param("closed", 503, id="closed: 503 once the held units run out"),
        pytest.param("local", 200, id="local: the process's own store decides"),
    ],
)
def test_redis_down_mid_run_spends_what_is_held_then_applies_the_policy(
    failure: str, after: int
) -> None:
    clock = FakeClock()
    with redis_server(free_port()) as srv:
        store = RedisStore(srv.url, now=clock)
        app = RateLimit(hello_app, "10000/60s", store=store, failure=failure)  # type: ignore[arg-type]
        try:
            for _ in range(30):
                assert call(app, make_environ()).code == 200
                clock.advance(0.001)
            held = store.local.get("203.0.113.7").held  # type: ignore[union-attr]
            assert held > 0
            srv.kill()
            served = [call(app, make_environ()) for _ in range(held)]
            assert [r.code for r in served] == [200] * held and store.failures == 0
            assert all(r.header("RateLimit") is not None for r in served)  # still decided
            beyond = call(app, make_environ())
            assert beyond.code == after and store.failures == 1
            srv.start()  # empty, on the same port
            clock.advance(1.5)  # past the back-off
            assert call(app, make_environ()).code == 200
            assert store.available
        finally:
            store.close()


# -- the quota over W workers ---------------------------------------------------------------


def redis_time_us(store: RedisStore) -> int:
    seconds, micros = store._client.time()
    return int(seconds) * 1_000_000 + int(micros)


schedules = st.lists(
    st.tuples(
        st.integers(0, 3),  # which worker
        st.integers(1, 3),  # cost
        st.sampled_from([0.0, 0.0, 0.0005, 0.002, 0.05, 0.6]),  # local time before it
    ),
    min_size=10,
    max_size=300,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    workers=st.integers(1, 4),
    quota=st.integers(3, 80),
    window=st.sampled_from([1.0, 10.0, 3600.0]),
    batch=st.sampled_from([0, 1, 4, 1000]),
    lease=st.sampled_from([0.05, 0.5]),
    schedule=schedules,
)
def test_workers_sharing_redis_never_admit_more_than_gcra_on_redis_clock(
    server: RedisServer,
    workers: int,
    quota: int,
    window: float,
    batch: int,
    lease: float,
    schedule: list[tuple[int, int, float]],
) -> None:
    """Each worker has its own store and local clock; the admitted units between two
    readings of Redis's clock never exceed ``floor((t1 - t0 + tau) / T)``."""
    policy = Policy.build("p", Rate(quota, window))
    clocks = [FakeClock() for _ in range(workers)]
    stores = [
        RedisStore(server.url, batch=batch, lease_s=lease, now=c, prefix="prop:") for c in clocks
    ]
    key = uuid.uuid4().hex
    stores[0]._connect()
    try:
        t0 = redis_time_us(stores[0])
        admitted = requested = 0
        for who, cost, dt in schedule:
            who %= workers
            clocks[who].advance(dt)
            requested += cost
            if (
                cost <= policy.burst
                and stores[who].update(key, policy.interval, policy.tolerance, cost)[0]
            ):
                admitted += cost
        t1 = redis_time_us(stores[0])
        interval_us = max(1, round(policy.interval * 1e6))
        tolerance_us = round(policy.tolerance * 1e6)
        assert admitted <= (t1 - t0 + tolerance_us) // interval_us, (admitted, requested)
    finally:
        for made in stores:
            made.close()


def test_the_property_is_not_vacuous(server: RedisServer) -> None:
    """The bound the property test checks is reached: four workers hammering one key admit
    the whole burst (no more), then are denied."""
    policy = Policy.build("p", Rate(200, 3600.0))
    clocks = [FakeClock() for _ in range(4)]
    stores = [RedisStore(server.url, now=c, prefix="prop:") for c in clocks]
    key = uuid.uuid4().hex
    try:
        admitted = 0
        for i in range(400):
            clocks[i % 4].advance(0.0005)
            admitted += stores[i % 4].update(key, policy.interval, policy.tolerance, 1)[0]
        # held units stranded in the three other workers: at most workers x cap (200 // 16)
        assert 200 - 4 * 12 <= admitted <= 200
    finally:
        for made in stores:
            made.close()


def test_redis_errors_surface_as_storage_errors_after_held_units() -> None:
    clock = FakeClock()
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", now=clock)
    with pytest.raises(StorageError):
        decide(store, "x")
    assert store.local.get("x") is None  # nothing recorded for a failed call


# -- the local bookkeeping alone (no Redis) -------------------------------------------------

SHAPE = ((HOT.interval, HOT.tolerance),)


def test_two_threads_reserving_at_once_keep_both_grants_until_the_earlier_expiry() -> None:
    local = Reservations(lease_s=0.5)
    local.record("k", SHAPE, 1, 10.0, True, 5, [0.03])  # thread A: 4 held, expires 10.5
    local.record("k", SHAPE, 1, 10.2, True, 3, [0.05])  # thread B, before A spent any
    grant = local.get("k")
    assert grant is not None and (grant.held, grant.expires) == (6, 10.5)
    assert all(local.spend("k", HOT.interval, HOT.tolerance, 1, 10.3) for _ in range(6))
    assert local.spend("k", HOT.interval, HOT.tolerance, 1, 10.3) is None  # ask Redis


def test_a_denial_arriving_after_another_threads_grant_keeps_that_grant() -> None:
    local = Reservations()
    local.record("k", SHAPE, 1, 10.0, True, 4, [0.02])
    assert local.record("k", SHAPE, 1, 10.0, False, 0, [60.0]) == [60.0]
    assert local.spend("k", HOT.interval, HOT.tolerance, 1, 10.1) == (True, pytest.approx(0.0))


def test_a_spend_past_the_lease_drops_the_units_and_asks_again() -> None:
    local = Reservations(lease_s=0.5)
    local.record("k", SHAPE, 1, 10.0, True, 9, [0.054])
    assert local.spend("k", HOT.interval, HOT.tolerance, 1, 10.49) is not None
    assert local.spend("k", HOT.interval, HOT.tolerance, 1, 10.5) is None
    assert local.get("k").held == 0  # type: ignore[union-attr]

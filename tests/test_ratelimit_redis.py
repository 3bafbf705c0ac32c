"""RedisStore against a real redis-server: TTLs, script reloads, outages and recovery."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from conftest import call, free_port, hello_app, make_environ
from ratelimit_helpers import FakeClock, RedisServer, redis_server
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.errors import StorageError
from voyagr_wsgi.health import Health
from voyagr_wsgi.ratelimit import Policy, Rate
from voyagr_wsgi.ratelimit.layer import RateLimit
from voyagr_wsgi.ratelimit.redis_store import RedisStore, store_health

pytestmark = pytest.mark.system

POLICY = Policy.build("default", Rate(5, 10.0))


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server(free_port()) as srv:
        yield srv


def test_key_expires_when_the_bucket_would_be_full(server: RedisServer) -> None:
    store = RedisStore(server.url)
    try:
        for _ in range(3):
            store.update("203.0.113.7", POLICY.interval, POLICY.tolerance, 1)
        pttl = store._client.pttl("vy:rl:{203.0.113.7}")
        assert 5000 <= pttl <= 6000  # 3 units x 2 s (less whatever real time has passed)
        assert store._client.get("vy:rl:{203.0.113.7}").isdigit()  # integer µs, no exponent
    finally:
        store.close()


def test_script_flushed_on_the_server_is_reloaded(server: RedisServer) -> None:
    store = RedisStore(server.url)
    try:
        assert store.update("k", POLICY.interval, POLICY.tolerance, 1)[0]
        store._client.script_flush()
        allowed, offset = store.update("k", POLICY.interval, POLICY.tolerance, 1)
        assert allowed and offset == pytest.approx(4.0, abs=0.25)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("failure", "status", "health"),
    [
        pytest.param("open", "200 OK", "warn", id="fail open: served, health warns"),
        pytest.param("closed", "503 Service Unavailable", "fail", id="fail closed: 503"),
    ],
)
def test_redis_killed_mid_test_then_back_on_the_same_port(
    server: RedisServer,
    failure: str,
    status: str,
    health: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    store = RedisStore(server.url, now=clock, backoff_s=1.0, log_every_s=60.0)
    checks = Health([store_health(store, failure)])  # type: ignore[arg-type]
    app = RateLimit(hello_app, "2/60s", store=store, failure=failure)  # type: ignore[arg-type]
    try:
        assert [call(app, make_environ()).code for _ in range(3)] == [200, 200, 429]
        assert checks.evaluate().status == "pass"

        server.kill()
        # the limited client is denied from memory until its retry time: no round trip
        limited = call(app, make_environ())
        assert (limited.code, limited.header("Retry-After"), store.failures) == (429, "30", 0)
        other = "198.51.100.8"  # a client this worker holds nothing for: Redis must decide
        with caplog.at_level(logging.ERROR, logger="voyagr_wsgi.ratelimit"):
            results = [call(app, make_environ(remote=other)) for _ in range(5)]
        assert [r.status for r in results] == [status] * 5
        assert all(r.header("RateLimit") is None for r in results)
        if failure == "closed":
            assert results[0].header("Content-Type") == "application/problem+json"
            assert b"temporary-reduced-capacity" in results[0].body
        assert store.failures == 5
        assert len([r for r in caplog.records if "unavailable" in r.message]) == 1
        report = checks.evaluate()
        assert report.status == health
        assert "unreachable" in report.checks[0].output  # type: ignore[operator]
        # fail closed: this instance can only answer 503, so it is not ready either
        assert report.ready is (failure == "open")
        assert report.readiness == ("warn" if failure == "open" else "fail")

        server.start()  # a new, empty server on the same port
        clock.advance(1.5)  # past the back-off: the next request tries Redis again
        assert [call(app, make_environ(remote=other)).code for _ in range(3)] == [200, 200, 429]
        assert checks.evaluate().status == "pass" and checks.evaluate().ready
    finally:
        store.close()


def test_unreachable_store_raises_storage_error_without_retrying_during_backoff() -> None:
    clock = FakeClock()
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", now=clock, backoff_s=5.0)
    with pytest.raises(StorageError, match="unavailable"):
        store.update("k", 1.0, 1.0, 1)
    calls_before = store.failures
    with pytest.raises(StorageError):
        store.update("k", 1.0, 1.0, 1)
    assert store.failures == calls_before + 1
    assert "ConnectionError" in store.last_error
    assert "password" not in repr(RedisStore("redis://user:password@127.0.0.1:1/0"))


def test_workers_sharing_redis_share_one_budget(server: RedisServer) -> None:
    workers = [RateLimit(hello_app, "3/60s", store=RedisStore(server.url)) for _ in range(3)]
    codes = [call(workers[i % 3], make_environ()).code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    for worker in workers:
        worker.store.close()  # type: ignore[attr-defined]


def test_apps_sharing_one_redis_keep_apart_with_their_own_prefix(server: RedisServer) -> None:
    def app(prefix: str) -> RateLimit:
        return compose(  # type: ignore[return-value]
            hello_app,
            Settings.from_env(
                {"ALLOWED_HOSTS": "example.com", "RATE_LIMIT_REQUESTS": "2",
                 "RATE_LIMIT_STORAGE": server.url, "RATE_LIMIT_REDIS_PREFIX": prefix,
                 "BACKUP_ENABLED": "false", "ALERTS_ENABLED": "false"}
            ),
        )  # fmt: skip

    shop, blog, shop_again = app("shop:rl:"), app("blog:rl:"), app("shop:rl:")
    assert [call(shop, make_environ()).code for _ in range(3)] == [200, 200, 429]
    assert [call(blog, make_environ()).code for _ in range(3)] == [200, 200, 429]
    assert call(shop_again, make_environ()).code == 429  # the same prefix: the same budget
    assert server_keys(server) == ["blog:rl:{203.0.113.7}", "shop:rl:{203.0.113.7}"]
    for stack in (shop, blog, shop_again):
        stack.components["ratelimit"].close()


def server_keys(server: RedisServer) -> list[str]:
    import redis

    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        return sorted(client.keys("*"))
    finally:
        client.close()


def test_local_failure_policy_keeps_limiting_in_process_while_redis_is_down(
    server: RedisServer,
) -> None:
    clock = FakeClock()
    store = RedisStore(server.url, now=clock, backoff_s=1.0, log_every_s=60.0)
    checks = Health([store_health(store, "local")])
    app = RateLimit(hello_app, "2/60s", store=store, failure="local")
    try:
        assert [call(app, make_environ()).code for _ in range(3)] == [200, 200, 429]
        server.kill()
        clock.advance(30.0)  # past the client's retry time: its cached denial is over
        # the process's own store starts empty: the quota again, then 429 (not unlimited)
        results = [call(app, make_environ()) for _ in range(4)]
        assert [r.code for r in results] == [200, 200, 429, 429]
        assert results[0].header("RateLimit") == '"default";r=1;t=30'
        assert [call(app, make_environ(remote="198.51.100.8")).code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        report = checks.evaluate()
        assert (report.status, report.ready) == ("warn", True)
        assert "each process limits on its own" in (report.checks[0].output or "")

        server.start()
        clock.advance(1.5)  # past the back-off: Redis decides again (a new, empty server)
        assert [call(app, make_environ()).code for _ in range(3)] == [200, 200, 429]
        assert checks.evaluate().status == "pass"
    finally:
        store.close()


def test_stacked_rates_on_redis_share_one_hash_slot_and_apply_together(
    server: RedisServer,
) -> None:
    store = RedisStore(server.url)
    app = RateLimit(hello_app, "2/1s;3/60s", store=store)
    try:
        assert [call(app, make_environ()).code for _ in range(3)] == [200, 200, 429]
        assert server_keys(server) == ["vy:rl:{203.0.113.7}", "vy:rl:{203.0.113.7}:default-2"]
        explained = app.explain(make_environ())
        assert (explained["outcome"], explained["policy"], explained["remaining"]) == (
            "answers",
            "default, default-2",
            0,
        )
    finally:
        store.close()

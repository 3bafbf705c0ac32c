"""The RateLimit layer: budgets, keys, headers, rules, streaming; every call validated."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import call, hello_app, make_environ
from ratelimit_helpers import FakeClock
from voyagr_wsgi import compose
from voyagr_wsgi.errors import ConfigurationError
from voyagr_wsgi.layers.proxy_trust import ProxyTrust
from voyagr_wsgi.ratelimit import MemoryStore, Policy, Rate, Rule
from voyagr_wsgi.ratelimit.keys import ipv6_grouper
from voyagr_wsgi.ratelimit.layer import RateLimit
from wsgi_apps import exc_info_app, lazy_streaming_app


def limited(spec: str = "3/60s", clock: FakeClock | None = None, **kw: Any) -> RateLimit:
    return RateLimit(hello_app, spec, store=MemoryStore(now=clock or FakeClock()), **kw)


def codes(app: Any, n: int, **environ: Any) -> list[int]:
    return [call(app, make_environ(**environ)).code for _ in range(n)]


@pytest.mark.parametrize(
    ("spec", "burst", "allowed", "refill_s"),
    [
        pytest.param("3/60s", None, 3, 20.0, id="3/60s: 3 at once, then one per 20 s"),
        pytest.param("100/60s", None, 100, 0.6, id="100/60s: 100 at once, then one per 0.6 s"),
        pytest.param("10/1s", 2, 2, 0.1, id="10/1s burst 2"),
        pytest.param("5/minute", None, 5, 12.0, id="5/minute"),
    ],
)
def test_budget_exhausted_then_refilled(
    spec: str, burst: int | None, allowed: int, refill_s: float
) -> None:
    clock = FakeClock()
    app = limited(spec, clock, burst=burst)
    assert codes(app, allowed + 2) == [200] * allowed + [429, 429]
    clock.advance(refill_s * 0.99)
    assert codes(app, 1) == [429]
    clock.advance(refill_s * 0.02)
    assert codes(app, 2) == [200, 429]


def test_two_clients_have_independent_budgets() -> None:
    app = limited("2/60s")
    assert codes(app, 3, remote="198.51.100.1") == [200, 200, 429]
    assert codes(app, 3, remote="198.51.100.2") == [200, 200, 429]


@pytest.mark.parametrize(
    ("n_before", "expected"),
    [
        pytest.param(0, ('"default";q=100;w=60', '"default";r=99;t=1'), id="first request"),
        pytest.param(49, ('"default";q=100;w=60', '"default";r=50;t=1'), id="51st request"),
        pytest.param(99, ('"default";q=100;w=60', '"default";r=0;t=1'), id="100th request"),
    ],
)
def test_allowed_response_carries_exact_ratelimit_fields(
    n_before: int, expected: tuple[str, str]
) -> None:
    app = limited("100/60s")
    for _ in range(n_before):
        call(app, make_environ())
    result = call(app, make_environ())
    assert (result.header("RateLimit-Policy"), result.header("RateLimit")) == expected
    assert result.header("Content-Type") == "text/plain" and result.body == b"hello"


@pytest.mark.parametrize("quota", [1, 100, 10**6, 10**8, 10**9])
def test_remaining_never_exceeds_the_quota(quota: int) -> None:
    # the tolerance's float slack was relative (1e-6), so a quota of 1e8 answered r=100000098
    # on the first request and allowed ~100 extra; it is now under one interval
    result = call(limited(f"{quota}/60s"), make_environ())
    refill = 60 if quota == 1 else 1  # seconds until one unit is back
    assert result.header("RateLimit") == f'"default";r={quota - 1};t={refill}'
    policy = Policy.build("default", Rate(quota, 60.0))
    assert policy.remaining(0.0) == quota
    assert policy.tolerance < policy.interval * (quota + 1)


def test_denied_response_headers_and_problem_body_are_exact() -> None:
    clock = FakeClock()
    app = limited("3/60s", clock)
    codes(app, 3)
    clock.advance(5.5)  # next unit frees at 20 s: 14.5 s left, rounded up
    result = call(app, make_environ())
    assert result.status == "429 Too Many Requests"
    assert result.headers == [
        ("Content-Type", "application/problem+json"),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(result.body))),
        ("Retry-After", "15"),
        ("RateLimit-Policy", '"default";q=3;w=60'),
        ("RateLimit", '"default";r=0;t=15'),
    ]
    assert json.loads(result.body) == {
        "type": "https://iana.org/assignments/http-problem-types#quota-exceeded",
        "title": "Quota Exceeded",
        "status": 429,
        "detail": "over the default policy's quota",
        "violated-policies": ["default"],
    }


@settings(max_examples=150, deadline=None)
@given(
    quota=st.integers(1, 50),
    window=st.integers(1, 3600),
    burst_share=st.floats(0.01, 1.0),
    costs=st.lists(st.integers(1, 5), min_size=1, max_size=60),
)
def test_retry_after_is_never_too_early_nor_later_than_one_extra_second(
    quota: int, window: int, burst_share: float, costs: list[int]
) -> None:
    policy = Policy.build("p", Rate(quota, float(window)), max(1, int(quota * burst_share)))
    clock = FakeClock()
    store = MemoryStore(now=clock)
    for cost in costs:
        if not policy.can_ever_allow(cost):
            continue
        allowed, offset = store.update("k", policy.interval, policy.tolerance, cost)
        if allowed:
            continue
        retry = policy.retry_after(offset, cost)
        assert retry >= 1
        if retry > 1:  # one second earlier is still too early
            clock.advance(retry - 1)
            assert not store.update("k", policy.interval, policy.tolerance, cost)[0]
            clock.advance(1)
        else:
            clock.advance(retry)
        assert store.update("k", policy.interval, policy.tolerance, cost)[0]


def test_retrying_at_retry_after_succeeds() -> None:
    clock = FakeClock()
    app = limited("7/13s", clock)
    for _ in range(20):
        result = call(app, make_environ())
        if result.code == 429:
            retry = int(result.header("Retry-After") or "0")
            assert retry >= 1
            clock.advance(retry)
            assert call(app, make_environ()).code == 200


@pytest.mark.parametrize(
    ("options", "present", "absent"),
    [
        pytest.param({"headers": False}, [], ["RateLimit", "RateLimit-Policy"], id="off"),
        pytest.param(
            {"legacy_headers": True},
            [
                ("X-RateLimit-Limit", "3"),
                ("X-RateLimit-Remaining", "2"),
                ("X-RateLimit-Reset", "20"),
                ("RateLimit", '"default";r=2;t=20'),
            ],
            [],
            id="legacy X-RateLimit-* added",
        ),
        pytest.param(
            {"name": "api"}, [("RateLimit-Policy", '"api";q=3;w=60')], [], id="policy name"
        ),
    ],
)
def test_header_options(
    options: dict[str, Any], present: list[tuple[str, str]], absent: list[str]
) -> None:
    result = call(limited("3/60s", **options), make_environ())
    for name, value in present:
        assert result.header(name) == value
    for name in absent:
        assert result.header(name) is None


def test_spoofed_forwarded_for_from_untrusted_peer_cannot_mint_budgets() -> None:
    store = MemoryStore(now=FakeClock())
    app = compose(hello_app, ProxyTrust(), RateLimit("2/60s", store=store))
    results = [
        call(
            app,
            make_environ(
                remote="203.0.113.9",
                headers={"X-Forwarded-For": f"198.51.100.{i}", "Forwarded": f"for=192.0.2.{i}"},
            ),
        ).code
        for i in range(4)
    ]
    assert results == [200, 200, 429, 429]


def test_clients_behind_a_trusted_proxy_are_limited_separately() -> None:
    store = MemoryStore(now=FakeClock())
    app = compose(hello_app, ProxyTrust(trusted=["10.0.0.0/8"]), RateLimit("1/60s", store=store))

    def via_proxy(client: str) -> int:
        env = make_environ(remote="10.0.0.2", headers={"X-Forwarded-For": client})
        return call(app, env).code

    assert [via_proxy("198.51.100.1"), via_proxy("198.51.100.2")] == [200, 200]
    assert [via_proxy("198.51.100.1"), via_proxy("198.51.100.2")] == [429, 429]


@pytest.mark.parametrize(
    ("first", "second", "prefix", "shared"),
    [
        pytest.param("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", 64, True, id="same /64"),
        pytest.param("2001:db8:1:2::1", "2001:db8:1:3::1", 64, False, id="next /64"),
        pytest.param("2001:db8:1:2::1", "2001:db8:1:3::1", 56, True, id="same /56"),
        pytest.param("2001:db8:1:2::1", "2001:db8:1:2::2", 128, False, id="/128"),
        pytest.param("::ffff:192.0.2.1", "192.0.2.1", 64, True, id="v4-mapped is v4"),
        pytest.param("fe80::1%eth0", "fe80::2", 64, True, id="zone id ignored"),
    ],
)
def test_ipv6_clients_are_grouped_by_prefix(
    first: str, second: str, prefix: int, shared: bool
) -> None:
    app = limited("1/60s", ipv6_prefix=prefix)
    assert call(app, make_environ(remote=first)).code == 200
    assert call(app, make_environ(remote=second)).code == (429 if shared else 200)


def test_ipv6_key_is_the_masked_network() -> None:
    assert ipv6_grouper(64)("2001:db8:1:2:3:4:5:6") == "20010db8000100020000000000000000/64"
    assert ipv6_grouper(60)("2001:db8:1:2f::") == "20010db8000100200000000000000000/60"
    assert ipv6_grouper(64)("not-an-address:x") == "not-an-address:x"
    with pytest.raises(ConfigurationError, match="ipv6_prefix"):
        ipv6_grouper(0)


def test_many_threads_on_one_key_never_exceed_the_budget() -> None:
    app = limited("50/3600s")
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = codes(app, 20)
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(200) == 50 and len(results) == 320


def test_key_cap_holds_under_a_flood_of_distinct_clients() -> None:
    store = MemoryStore(max_keys=1000, now=FakeClock())
    app = RateLimit(hello_app, "5/60s", store=store)
    for i in range(5000):
        call(app, make_environ(remote=f"2001:db8:{i:x}::1"))
    assert len(store) <= 1000
    assert store.evicted >= 4000


def test_streaming_body_is_not_buffered_and_close_is_passed_once() -> None:
    bodies: list[Any] = []
    app = RateLimit(lazy_streaming_app(bodies), "5/60s", store=MemoryStore(now=FakeClock()))
    result = call(app, make_environ())
    assert result.body == b"onetwothree"
    assert result.header("RateLimit") == '"default";r=4;t=12'
    assert len(bodies) == 1 and bodies[0].closed == 1 and bodies[0].yielded == 3


def test_body_object_is_returned_unwrapped() -> None:
    bodies: list[Any] = []
    app = RateLimit(lazy_streaming_app(bodies), "5/60s")
    environ = make_environ()
    body = app(environ, lambda status, headers, exc_info=None: lambda data: None)
    assert body is bodies[0]


def test_exc_info_second_start_response_keeps_the_fields() -> None:
    result = call(RateLimit(exc_info_app, "5/60s"), make_environ())
    assert result.status.startswith("500") and result.header("RateLimit") is not None


def test_route_rule_has_its_own_tighter_budget() -> None:
    app = limited("100/60s", rules=[Rule("/login", "2/60s", methods=("POST",))])
    assert codes(app, 3, path="/login", method="POST") == [200, 200, 429]
    assert codes(app, 1, path="/login/", method="POST") == [429]
    assert codes(app, 1, path="/login", method="GET") == [200]
    assert codes(app, 1, path="/loginx", method="POST") == [200]
    result = call(app, make_environ(path="/login", method="POST"))
    assert result.header("RateLimit-Policy") == '"login";q=2;w=60'


@pytest.mark.parametrize(
    ("options", "environ", "limited_after"),
    [
        pytest.param({"exempt": ["/static/*"]}, {"path": "/static/app.js"}, False, id="exempt"),
        pytest.param({"exempt": ["/static/*"]}, {"path": "/staticx"}, True, id="not exempt"),
        pytest.param(
            {"allow": ["192.0.2.0/24"]}, {"remote": "192.0.2.9"}, False, id="allow-listed CIDR"
        ),
        pytest.param(
            {"allow": ["192.0.2.0/24"]},
            {"remote": "::ffff:192.0.2.9"},
            False,
            id="allow-listed v4-mapped",
        ),
        pytest.param(
            {"allow": ["192.0.2.0/24"]},
            {"remote": "198.51.100.1"},
            True,
            id="outside the allow-list",
        ),
    ],
)
def test_exempt_paths_and_allow_list(
    options: dict[str, Any], environ: dict[str, Any], limited_after: bool
) -> None:
    app = limited("1/60s", **options)
    results = codes(app, 3, **environ)
    assert results == ([200, 429, 429] if limited_after else [200, 200, 200])
    if not limited_after:
        assert call(app, make_environ(**environ)).header("RateLimit") is None


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        pytest.param(2, [200, 200, 429], id="int cost 2 of 5"),
        pytest.param(
            lambda env: 5 if env["REQUEST_METHOD"] == "POST" else 1,
            [200, 429, 429],
            id="callable: POST costs 5",
        ),
        pytest.param(0, [200, 200, 200], id="cost 0 never limits"),
    ],
)
def test_cost_per_request(cost: Any, expected: list[int]) -> None:
    app = limited("5/60s", cost=cost)
    assert codes(app, 3, method="POST") == expected


def test_key_function_groups_by_api_key_and_falls_back_to_ip() -> None:
    app = limited("1/60s", key=lambda env: env.get("HTTP_X_API_KEY"))
    assert codes(app, 1, remote="198.51.100.1", headers={"X-API-Key": "k1"}) == [200]
    assert codes(app, 1, remote="198.51.100.2", headers={"X-API-Key": "k1"}) == [429]
    assert codes(app, 2, remote="198.51.100.2") == [200, 429]


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        pytest.param(("lots",), {}, "not a rate", id="bad spec"),
        pytest.param((), {}, "spec", id="missing spec"),
        pytest.param(("5/60s",), {"burst": 0}, "burst", id="burst 0"),
        pytest.param(("5/60s",), {"cost": 6}, "exceeds the burst", id="cost above burst"),
        pytest.param(("5/60s",), {"cost": -1}, "cost", id="negative cost"),
        pytest.param(("5/60s",), {"failure": "maybe"}, "failure", id="bad failure"),
        pytest.param(("5/60s",), {"allow": ["nope"]}, "allow", id="bad CIDR"),
        pytest.param(("5/60s",), {"exempt": ["static"]}, "exempt", id="relative path"),
        pytest.param(("5/60s",), {"store": object()}, "store", id="not a store"),
        pytest.param(("5/60s",), {"rules": [Rule("/x", "0/1s")]}, "quota", id="rule quota 0"),
        pytest.param(("5/60s",), {"name": "caf\u00e9"}, "policy name", id="non-ASCII name"),
    ],
)
def test_bad_configuration_raises_naming_the_option(
    args: tuple[Any, ...], options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RateLimit(*args, **options)


def test_unbound_layer_binds_with_the_same_store() -> None:
    unbound = RateLimit("1/60s")
    stack = compose(hello_app, unbound)
    bound = stack.layer("RateLimit")
    assert bound.store is unbound.store and bound.bound and not unbound.bound
    assert codes(stack, 2) == [200, 429]
    assert "1/60s" in repr(unbound)


def test_layer_is_exported_from_voyagr_wsgi_layers() -> None:
    from voyagr_wsgi import layers

    assert getattr(layers, "RateLimit") is RateLimit


def test_stacked_rates_all_apply_and_are_all_reported() -> None:
    clock = FakeClock()
    app = limited("2/1s;3/60s", clock)
    first = call(app, make_environ())
    assert first.header("RateLimit-Policy") == '"default";q=2;w=1, "default-2";q=3;w=60'
    assert first.header("RateLimit") == '"default";r=1;t=1, "default-2";r=2;t=20'
    assert codes(app, 2) == [200, 429]  # the per-second rate
    clock.advance(1.0)
    assert codes(app, 1) == [200]  # the third of the minute's budget
    clock.advance(1.0)
    denied = call(app, make_environ())
    assert denied.code == 429  # the per-minute rate, although the second has room again
    assert json.loads(denied.body)["violated-policies"] == ["default-2"]
    # GCRA: the minute's budget refills one unit every 20 s, the next at t=20
    assert int(denied.header("Retry-After") or 0) == 18
    clock.advance(18.0)
    assert codes(app, 2) == [200, 429]


def test_a_request_denied_by_one_stacked_rate_spends_nothing_of_the_others() -> None:
    clock = FakeClock()
    app = limited("1/1s;10/60s", clock)
    assert codes(app, 5) == [200, 429, 429, 429, 429]
    clock.advance(1.0)
    # the minute's budget (one unit per 6 s) holds 2 requests, not 5: 8 left
    assert call(app, make_environ()).header("RateLimit") == '"default";r=0;t=1, "default-2";r=8;t=5'


def test_stacked_rule_from_the_environment() -> None:
    from voyagr_wsgi import Settings

    settings = Settings.from_env(
        {"ALLOWED_HOSTS": "example.com", "RATE_LIMIT_ROUTES": "/login=2/1s;3/60s",
         "BACKUP_ENABLED": "false"}
    )  # fmt: skip
    stack = compose(hello_app, settings)
    login = [call(stack, make_environ("/login")).code for _ in range(3)]
    assert login == [200, 200, 429]
    assert call(stack, make_environ("/")).code == 200  # the default budget is separate


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("5/60s;", "is not a rate", id="empty part"),
        pytest.param("5/60s;10/1m", "same window", id="two rates, one window"),
    ],
)
def test_bad_stacked_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RateLimit(hello_app, spec)


def test_a_store_without_update_many_refuses_stacked_rates() -> None:
    class SingleOnly:
        def update(
            self, key: str, interval: float, tolerance: float, cost: int
        ) -> tuple[bool, float]:
            return True, 0.0

        def clear(self) -> None:
            pass

    with pytest.raises(ConfigurationError, match="has no update_many"):
        RateLimit(hello_app, "1/1s;10/1m", store=SingleOnly())  # type: ignore[arg-type]
    RateLimit(hello_app, "1/1s", store=SingleOnly())  # type: ignore[arg-type]  # one rate: fine

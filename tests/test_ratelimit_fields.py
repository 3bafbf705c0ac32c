"""The RateLimit field arithmetic, once: ``Policy.state(offset)`` -> (remaining, reset), the
Retry-After wait, and the fields the layer sends (single and stacked policies)."""

from __future__ import annotations

import pytest

from conftest import call, hello_app, make_environ
from ratelimit_helpers import FakeClock
from voyagr_wsgi.layers import RateLimit
from voyagr_wsgi.ratelimit.gcra import Policy
from voyagr_wsgi.ratelimit.memory import MemoryStore
from voyagr_wsgi.ratelimit.responses import CompiledPolicy
from voyagr_wsgi.ratelimit.spec import parse_rate


def policy(spec: str, burst: int | None = None) -> Policy:
    return Policy.build("default", parse_rate(spec), burst)


@pytest.mark.parametrize(
    "spec, burst, offset, remaining, reset",
    [
        pytest.param("10/10s", None, 0.0, 10, 0, id="fresh client: full, t=0"),
        pytest.param("10/10s", None, 1.0, 9, 1, id="one unit spent"),
        pytest.param("10/10s", None, 0.5, 9, 1, id="half an interval spent"),
        pytest.param("10/10s", None, 9.2, 0, 1, id="less than one unit left"),
        pytest.param("10/10s", None, 10.0, 0, 1, id="exactly at the limit"),
        pytest.param("10/10s", None, 12.0, 0, 3, id="over the limit (denied state)"),
        pytest.param("10/10s", 20, 0.0, 20, 0, id="burst above quota, full"),
        pytest.param("10/10s", 20, 15.0, 5, 1, id="burst above quota, 15 spent"),
        pytest.param("10/10s", 3, 3.0, 0, 1, id="burst below quota, all spent"),
        pytest.param("1/60s", None, 0.0, 1, 0, id="quota 1, full"),
        pytest.param("1/60s", None, 60.0, 0, 60, id="quota 1, spent"),
        pytest.param("1/60s", None, 30.0, 0, 30, id="quota 1, half way back"),
        pytest.param("1000000000/1s", None, 0.0, 1_000_000_000, 0, id="quota 1e9, full"),
        pytest.param("1000000000/1s", None, 0.5, 500_000_000, 1, id="quota 1e9, half spent"),
        pytest.param("1000000000/1s", None, 1.0, 0, 1, id="quota 1e9, at the limit"),
    ],
)
def test_state_is_units_left_and_seconds_until_more(
    spec: str, burst: int | None, offset: float, remaining: int, reset: int
) -> None:
    p = policy(spec, burst)
    assert p.state(offset) == (remaining, reset)
    assert 0 <= p.state(offset)[0] <= p.burst


@pytest.mark.parametrize(
    "spec, offset, cost, wait",
    [
        pytest.param("10/10s", 10.0, 1, 1, id="at the limit, one unit"),
        pytest.param("10/10s", 10.0, 3, 3, id="at the limit, three units"),
        pytest.param("10/10s", 9.5, 1, 1, id="half an interval short, rounded up"),
        pytest.param("1/60s", 60.0, 1, 60, id="quota 1"),
        pytest.param("1000000000/1s", 1.0, 1, 1, id="quota 1e9: at least one second"),
    ],
)
def test_retry_after_is_whole_seconds_at_least_one(
    spec: str, offset: float, cost: int, wait: int
) -> None:
    assert policy(spec).retry_after(offset, cost) == wait


def test_fields_at_builds_both_fields_from_the_state() -> None:
    compiled = CompiledPolicy(policy("10/10s"), "", None)
    assert compiled.fields_at(1.0) == [
        ("RateLimit-Policy", '"default";q=10;w=10'),
        ("RateLimit", '"default";r=9;t=1'),
    ]
    assert compiled.fields_at(0.0)[1] == ("RateLimit", '"default";r=10;t=0')


def _sent(layer: RateLimit, name: str = "RateLimit") -> tuple[int, str | None, str | None]:
    result = call(layer, make_environ(remote="203.0.113.9"))
    return result.code, result.header(name), result.header("Retry-After")


def test_the_layer_sends_the_state_of_a_single_policy() -> None:
    clock = FakeClock()
    layer = RateLimit(hello_app, "10/10s", store=MemoryStore(now=clock))
    sent = [_sent(layer) for _ in range(11)]
    assert sent[:10] == [(200, f'"default";r={9 - i};t=1', None) for i in range(10)]
    assert sent[10] == (429, '"default";r=0;t=1', "1")
    clock.advance(0.5)
    assert _sent(layer) == (429, '"default";r=0;t=1', "1")
    clock.advance(0.5)
    assert _sent(layer) == (200, '"default";r=0;t=1', None)
    clock.advance(10)
    assert _sent(layer) == (200, '"default";r=9;t=1', None)


def test_the_layer_sends_the_state_of_quota_one() -> None:
    clock = FakeClock()
    layer = RateLimit(hello_app, "1/60s", store=MemoryStore(now=clock))
    assert _sent(layer) == (200, '"default";r=0;t=60', None)
    clock.advance(20)
    assert _sent(layer) == (429, '"default";r=0;t=40', "40")


def test_the_layer_sends_every_stacked_policy_state() -> None:
    clock = FakeClock()
    layer = RateLimit(hello_app, "2/1s;5/60s", store=MemoryStore(now=clock))
    assert _sent(layer) == (200, '"default";r=1;t=1, "default-2";r=4;t=12', None)
    assert _sent(layer) == (200, '"default";r=0;t=1, "default-2";r=3;t=12', None)
    assert _sent(layer) == (429, '"default";r=0;t=1', "1")
    clock.advance(1)
    assert _sent(layer) == (200, '"default";r=1;t=1, "default-2";r=2;t=11', None)
    assert _sent(layer, "RateLimit-Policy")[1] == '"default";q=2;w=1, "default-2";q=5;w=60'


def test_stacked_and_single_fields_agree_on_one_policy() -> None:
    """The stacked path's per-policy fields are the single path's, from the same function."""
    clock = FakeClock()
    single = RateLimit(hello_app, "5/60s", store=MemoryStore(now=clock))
    stacked = RateLimit(hello_app, "5/60s;1000/1d", store=MemoryStore(now=clock))
    for _ in range(7):
        one, both = _sent(single), _sent(stacked)
        assert one[0] == both[0]
        if one[0] == 200:
            assert both[1] is not None and both[1].startswith(str(one[1]) + ", ")
        clock.advance(3.3)

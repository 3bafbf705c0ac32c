"""Truthful numbers: percentiles within the observed min/max, exact from the ring of recent
durations where it covers what is asked, the merged last-1000 histogram, cache memory."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from bisect import bisect_left
from typing import Any

import cachetools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import require_tool
from voyagr_wsgi.metrics import cachetools_stats, lru_cache_stats, multiprocess, reader
from voyagr_wsgi.metrics.families import HTTP_BOUNDS
from voyagr_wsgi.metrics.health import HealthSource
from voyagr_wsgi.metrics.prometheus import render
from voyagr_wsgi.metrics.registry import Registry
from voyagr_wsgi.metrics.views import bounded_quantile, history, json_view, window


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def observe(reg: Registry, durations: list[float], route: str = "/r") -> None:
    for d in durations:
        reg.started()
        reg.observe_request("GET", route, 200, d, d / 2, False)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def doc(reg: Registry) -> dict[str, Any]:
    snap = reader.merged(reg)
    return json_view(snap, now=reg.now(), slot_s=reg.slot_s, threshold_s=1.0)


def test_one_fast_request_reports_its_own_duration_at_every_percentile() -> None:
    reg = Registry(now=Clock())
    observe(reg, [0.00024])
    d = doc(reg)
    route = d["routes"]["GET /r"]
    assert (route["p50_ms"], route["p95_ms"], route["p99_ms"]) == (0.24, 0.24, 0.24)
    assert (d["requests"]["p50_ms"], d["requests"]["p95_ms"], d["requests"]["p99_ms"]) == (
        0.24, 0.24, 0.24,
    )  # fmt: skip
    lat = d["window"]["latency_s"]
    assert (lat["p50"], lat["p95"], lat["p99"]) == (0.00024, 0.00024, 0.00024)
    point = history(reg.snapshot(), now=reg.now(), slot_s=reg.slot_s, retention_s=900)["points"][-1]
    assert (point["p50_ms"], point["p95_ms"], point["p99_ms"]) == (0.24, 0.24, 0.24)


def test_window_percentiles_are_exact_from_the_ring_when_it_covers_the_window() -> None:
    reg = Registry(now=Clock())
    durations = [0.0011 * (i + 1) for i in range(40)]  # 1.1 .. 44 ms, spread over buckets
    observe(reg, durations)
    lat = window(reg.snapshot(), 60, reg.now(), reg.slot_s)["latency_s"]
    ordered = sorted(durations)
    assert lat["p50"] == pytest.approx(ordered[0] + (ordered[-1] - ordered[0]) * 0.5, abs=1e-6)
    assert lat["p99"] == pytest.approx(ordered[38] + (ordered[39] - ordered[38]) * 0.61, abs=1e-6)


def test_percentiles_beyond_the_ring_stay_within_the_observed_min_and_max() -> None:
    reg = Registry(now=Clock(), ring_size=10)
    observe(reg, [0.0004] * 58 + [0.0006] * 2)  # ring holds 10 of 60: buckets, clamped
    lat = window(reg.snapshot(), 60, reg.now(), reg.slot_s)["latency_s"]
    for q in ("p50", "p95", "p99"):
        assert 0.0004 <= lat[q] <= 0.0006
    route = doc(reg)["routes"]["GET /r"]
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        assert 0.4 <= route[q] <= 0.6


def test_slow_query_p95_never_exceeds_the_slowest_query() -> None:
    reg = Registry(now=Clock())
    for d in (1.2, 2.0, 3.1, 5.02):
        reg.query("SELECT ?", d)
    for d in (0.002,) * 10:
        reg.query("SELECT ?", d)
    system = doc(reg)["database"]["systems"]["sqlite"]
    assert system["p95_ms"] <= 5020.0
    assert system["max_ms"] == 5020.0


def test_upstream_p95_stays_within_the_observed_calls() -> None:
    reg = Registry(now=Clock())
    reg.upstream_call("osrm", "success", 0.0031)
    up = doc(reg)["upstreams"]["osrm"]
    assert up["p95_ms"] == 3.1


def test_health_p95_is_the_observed_value_for_a_single_request() -> None:
    reg = Registry(now=Clock())
    observe(reg, [0.00024] * 3)
    source = HealthSource(reg)
    w = window(reader.merged(reg), source.t.window_s, reg.now(), reg.slot_s)
    assert w["latency_s"]["p95"] == 0.00024


def test_last_1000_is_merged_across_workers_exact_and_newest_first(tmp_path: Any) -> None:
    clock = Clock()
    me = Registry(state_dir=str(tmp_path), now=clock)
    other = Registry(state_dir=str(tmp_path), now=clock)
    other.pid = os.getppid()  # a live process standing in for another worker
    me.shared = other.shared = True
    observe(me, [0.9] * 600)  # old and slow, in an earlier slot
    observe(other, [0.9] * 600)
    clock.t += 30
    observe(me, [0.0002] * 400)
    observe(other, [0.003] * 300)
    clock.t += 5
    observe(other, [0.02] * 300)
    multiprocess.write_snapshot(other)
    last = doc(me)["last_1000"]
    assert last["count"] == 1000
    counts = {b["le"]: b["count"] for b in last["buckets"]}
    assert [b["le"] for b in last["buckets"]] == [*HTTP_BOUNDS, "+Inf"]
    assert counts[0.0005] == 400 and counts[0.005] == 300 and counts[0.025] == 300
    assert counts[1.0] == 0  # the 1,200 older slow ones are not among the newest 1000
    assert last["max_ms"] == 20.0
    assert last["p50_ms"] == 3.0
    assert last["p99_ms"] == 20.0


def test_last_1000_is_empty_without_requests() -> None:
    last = doc(Registry(now=Clock()))["last_1000"]
    assert last["count"] == 0 and last["p95_ms"] is None and last["max_ms"] is None


def test_lru_cache_memory_is_a_labelled_estimate() -> None:
    reg = Registry(now=Clock())

    @functools.lru_cache(maxsize=128)
    def plan(a: int) -> list[str]:
        return [f"step {i}" for i in range(a)]

    lru_cache_stats("routes", plan, registry=reg)
    for a in range(50):
        plan(a)
    cache = doc(reg)["caches"]["routes"]
    assert cache["entries"] == 50
    assert cache["memory_estimated"] is True
    assert 50 * 100 < cache["memory_bytes"] < 50 * 100_000
    text = render(reg.snapshot(), now=reg.now())
    assert 'voyagr_cache_memory_bytes{cache="routes",estimate="true"}' in text


def test_lru_cache_memory_is_zero_when_empty_and_exact_when_given() -> None:
    reg = Registry(now=Clock())
    lru_cache_stats("empty", functools.lru_cache(maxsize=8)(abs), registry=reg)
    lru_cache_stats(
        "given", functools.lru_cache(maxsize=8)(abs), registry=reg, memory_bytes=lambda: 7
    )
    caches = doc(reg)["caches"]
    assert caches["empty"]["memory_bytes"] == 0
    assert caches["given"]["memory_bytes"] == 7 and caches["given"]["memory_estimated"] is False
    assert 'voyagr_cache_memory_bytes{cache="given",estimate="false"} 7' in render(
        reg.snapshot(), now=reg.now()
    )


@pytest.mark.parametrize(
    "cache",
    [
        pytest.param(cachetools.LRUCache(maxsize=100), id="LRUCache"),
        pytest.param(cachetools.TTLCache(maxsize=100, ttl=60), id="TTLCache"),
    ],
)
def test_cachetools_memory_is_a_labelled_estimate(cache: Any) -> None:
    reg = Registry(now=Clock())
    cache = cachetools_stats("tiles", cache, registry=reg)
    for i in range(20):
        cache[f"tile-{i}"] = b"x" * 1000
    c = doc(reg)["caches"]["tiles"]
    assert c["entries"] == 20 and c["memory_estimated"] is True
    assert 20 * 1000 < c["memory_bytes"] < 20 * 2000


def test_cachetools_with_getsizeof_reports_its_own_size_not_an_estimate() -> None:
    reg = Registry(now=Clock())
    cache = cachetools_stats("sized", cachetools.LRUCache(maxsize=100, getsizeof=len), registry=reg)
    cache["a"] = "abc"
    c = doc(reg)["caches"]["sized"]
    assert c["memory_bytes"] == 3 and c["memory_estimated"] is False


@given(
    values=st.lists(st.floats(min_value=1e-6, max_value=30.0), min_size=1, max_size=200),
    q=st.sampled_from([0.01, 0.5, 0.95, 0.99, 1.0]),
    with_min=st.booleans(),
)
def test_bucket_percentiles_never_leave_the_observed_range(
    values: list[float], q: float, with_min: bool
) -> None:
    counts = [0] * (len(HTTP_BOUNDS) + 1)
    for v in values:
        counts[bisect_left(HTTP_BOUNDS, v)] += 1
    lo = min(values) if with_min else None
    value = bounded_quantile(q, counts, lo, max(values))
    assert value is not None and min(values) <= value <= max(values)


def test_promtool_accepts_estimated_and_exact_cache_memory() -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    reg = Registry(now=Clock())
    fn = functools.lru_cache(maxsize=8)(str)
    lru_cache_stats("estimated", fn, registry=reg)
    lru_cache_stats("exact", functools.lru_cache(maxsize=8)(abs), registry=reg, memory_bytes=int)
    fn(1)
    text = render(reg.snapshot(), now=reg.now())
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'voyagr_cache_memory_bytes{cache="exact",estimate="false"} 0' in text


def test_a_window_with_an_exited_worker_is_read_from_the_buckets_within_its_max(
    tmp_path: Any,
) -> None:
    me = Registry(state_dir=str(tmp_path), now=Clock())
    gone = Registry(state_dir=str(tmp_path), now=me.now)
    gone.pid = dead_pid()
    me.shared = gone.shared = True
    observe(me, [0.0002] * 10)
    observe(gone, [0.003] * 10)
    multiprocess.write_snapshot(gone)  # its ring is dropped when its file is archived
    lat = reader.window(me, 60)["latency_s"]
    assert lat["max"] == 0.003
    assert 0.0002 <= lat["p50"] <= lat["p99"] <= 0.003
    assert lat["p50"] == 0.0005  # the lowest occupied bucket's top: not exact, not below

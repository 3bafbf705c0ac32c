"""Trackers: upstream calls, cache statistics, slow queries."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cachetools
import pytest

from conftest import call, make_environ
from voyagr_wsgi import Settings, compose
from voyagr_wsgi.layers import Metrics
from voyagr_wsgi.metrics import (
    MetricsWarning,
    Registry,
    cache_stats,
    cachetools_stats,
    connect,
    current_registry,
    lru_cache_stats,
    track_query,
    track_upstream,
    use_registry,
)
from voyagr_wsgi.metrics.reader import window
from voyagr_wsgi.metrics.snapshot import UpstreamFigures
from voyagr_wsgi.metrics.trackers import normalize_sql


class ReadTimeout(Exception):
    """Named like requests.exceptions.ReadTimeout."""


class HTTPError(Exception):
    pass


class SubTimeout(ReadTimeout):
    pass


def upstream(registry: Registry, name: str) -> UpstreamFigures:
    return registry.snapshot().upstreams[name]


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        pytest.param(None, (1, 0, 0), id="success"),
        pytest.param(HTTPError("502"), (0, 1, 0), id="exception is error"),
        pytest.param(TimeoutError(), (0, 0, 1), id="TimeoutError is timeout"),
        pytest.param(SubTimeout(), (0, 0, 1), id="subclass of a *Timeout class"),
        pytest.param(ReadTimeout(), (0, 0, 1), id="class named *Timeout is timeout"),
    ],
)
def test_track_upstream_records_outcome_and_reraises(
    raised: Exception | None, expected: tuple[int, int, int]
) -> None:
    registry = Registry()
    try:
        with track_upstream("osrm", registry=registry):
            if raised is not None:
                raise raised
    except Exception as exc:
        assert exc is raised
    u = upstream(registry, "osrm")
    assert (u.success, u.errors, u.timeouts) == expected
    assert sum(u.buckets) == 1 and u.sum_s >= 0 and u.max_s == u.sum_s


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        pytest.param(False, (0, 1, 0), id="fail()"),
        pytest.param(True, (0, 0, 1), id="fail(timeout)"),
    ],
)
def test_track_upstream_fail_marks_a_call_that_raised_nothing(
    timeout: bool, expected: tuple[int, int, int]
) -> None:
    registry = Registry()
    with track_upstream("valhalla", registry=registry) as call:
        call.fail(timeout=timeout)
    u = upstream(registry, "valhalla")
    assert (u.success, u.errors, u.timeouts) == expected


def test_track_upstream_as_decorator_counts_each_call() -> None:
    registry = Registry()

    @track_upstream("graphhopper", registry=registry)
    def route(fail: bool) -> str:
        if fail:
            raise HTTPError("boom")
        return "ok"

    assert route(False) == "ok"
    assert route.__name__ == "route"
    with pytest.raises(HTTPError):
        route(True)
    u = upstream(registry, "graphhopper")
    assert (u.success, u.errors, u.timeouts) == (1, 1, 0)


def osrm_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    """Calls the upstream in the view and again while the server iterates the body."""
    with track_upstream("osrm"):
        pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"a"
    with track_upstream("osrm"):
        pass
    yield b"b"


def test_trackers_in_a_view_record_into_the_serving_stack_and_two_stacks_share_nothing(
    tmp_path: Path,
) -> None:
    one = compose(osrm_app, Settings(state_dir=str(tmp_path / "one")))
    two = compose(osrm_app, Settings(state_dir=str(tmp_path / "two")))
    for stack in (one, two, one):
        assert call(stack, make_environ("/")).body == b"ab"
    assert one.metrics is one.components["metrics"] and one.metrics is not two.metrics
    assert upstream(one.metrics, "osrm").success == 4  # two requests, two calls each
    assert upstream(two.metrics, "osrm").success == 2


def test_metrics_layer_without_registry_owns_one_that_binding_keeps() -> None:
    layer = Metrics()
    stack = compose(osrm_app, layer)
    assert call(stack, make_environ("/")).body == b"ab"
    assert stack.metrics is layer.registry is stack.layer("Metrics").registry
    assert upstream(layer.registry, "osrm").success == 2


def test_a_tracker_outside_a_request_without_registry_warns_and_records_nothing() -> None:
    def outside() -> None:
        assert current_registry() is None
        with pytest.warns(MetricsWarning, match="track_upstream"), track_upstream("osrm"):
            pass
        with pytest.warns(MetricsWarning, match="cache_stats"):
            cache_stats("c").hit()
        with pytest.warns(MetricsWarning, match="track_query"), track_query("SELECT 1"):
            pass

    contextvars.Context().run(outside)  # a fresh context: no request ever entered it


@pytest.mark.parametrize(
    "attach",
    [
        pytest.param(lambda: lru_cache_stats("r", functools.lru_cache(len)), id="lru_cache"),
        pytest.param(lambda: cachetools_stats("t", cachetools.LRUCache(2)), id="cachetools"),
    ],
)
def test_a_cache_poller_without_registry_outside_a_request_is_a_configuration_error(
    attach: Callable[[], Any],
) -> None:
    from voyagr_wsgi import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"registry=stack\.metrics"):
        contextvars.Context().run(attach)


def test_use_registry_makes_one_current_for_a_block_then_restores() -> None:
    registry = Registry()

    def outside() -> None:
        with use_registry(registry):
            assert current_registry() is registry
            with track_upstream("osrm"):
                pass
            cache_stats("c").hit()
        assert current_registry() is None

    contextvars.Context().run(outside)
    assert upstream(registry, "osrm").success == 1
    assert registry.snapshot().caches["c"].hits == 1


def test_manual_cache_stats_give_hit_and_eviction_rates() -> None:
    from voyagr_wsgi.metrics.views import json_view

    registry = Registry()
    stats = cache_stats("geocode", registry=registry)
    stats.hit(3)
    stats.miss()
    stats.evict()
    stats.size(12, memory_bytes=4096)
    view = json_view(registry.snapshot(), now=registry.now(), slot_s=5, threshold_s=1)
    assert view["caches"]["geocode"] == {
        "hits": 3, "misses": 1, "evictions": 1, "entries": 12, "memory_bytes": 4096,
        "memory_estimated": False, "hit_rate": 0.75, "eviction_rate": 1.0,
    }  # fmt: skip


def test_lru_cache_adapter_polls_cache_info_and_derives_evictions() -> None:
    registry = Registry()

    @functools.lru_cache(maxsize=2)
    def square(x: int) -> int:
        return x * x

    lru_cache_stats("squares", square, registry=registry, memory_bytes=lambda: 100)
    for x in (1, 1, 2, 3, 1):  # hits: 1; misses: 1, 2, 3, 1; evicts 1 then 2
        square(x)
    assert registry.snapshot().caches["squares"] == (1, 4, 2, 2, 100, False)
    square(1)
    assert registry.snapshot().caches["squares"] == (2, 4, 2, 2, 100, False)  # deltas, not doubled
    square.cache_clear()
    square(5)
    assert registry.snapshot().caches["squares"] == (2, 5, 2, 1, 100, False)  # restart after clear


def test_lru_cache_adapter_rejects_a_plain_function() -> None:
    from voyagr_wsgi import ConfigurationError

    with pytest.raises(ConfigurationError, match="cache_info"):
        lru_cache_stats("plain", lambda x: x, registry=Registry())


def test_cachetools_adapter_counts_hits_misses_and_size_evictions() -> None:
    registry = Registry()
    cache = cachetools_stats("tiles", cachetools.LRUCache(maxsize=2), registry=registry)

    @cachetools.cached(cache)
    def tile(n: int) -> str:
        return f"tile{n}"

    for n in (1, 1, 2, 3, 1):
        tile(n)
    assert cache.get(99) is None
    assert cache.get(cachetools.keys.hashkey(1)) == "tile1"
    c = registry.snapshot().caches["tiles"]
    assert (c.hits, c.misses, c.evictions, c.entries) == (2, 5, 2, 2)
    assert isinstance(cache, cachetools.LRUCache)


def test_cachetools_adapter_reports_memory_when_sized() -> None:
    registry = Registry()
    cache = cachetools_stats(
        "blobs", cachetools.LRUCache(maxsize=100, getsizeof=len), registry=registry
    )
    cache["a"] = b"x" * 10
    cache["b"] = b"y" * 30
    assert registry.snapshot().caches["blobs"][3:] == (2, 40, False)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param("SELECT * FROM users WHERE email = 'a@b.c' AND id = 42",
                     "SELECT * FROM users WHERE email = ? AND id = ?", id="string and int"),
        pytest.param("select 1.5e3, x'DEADBEEF', 0x1F", "select ?, ?, ?", id="float, blob, hex"),
        pytest.param("SELECT 'it''s'", "SELECT ?", id="escaped quote"),
        pytest.param("DELETE FROM t WHERE id IN (1, 2, 3,4)", "DELETE FROM t WHERE id IN (?)",
                     id="IN list collapsed"),
        pytest.param("SELECT a1, t2.b FROM t2", "SELECT a1, t2.b FROM t2",
                     id="identifiers with digits kept"),
        pytest.param("SELECT\n  a\n\tFROM   t", "SELECT a FROM t", id="whitespace collapsed"),
    ],
)  # fmt: skip
def test_normalize_sql_strips_literals(statement: str, expected: str) -> None:
    assert normalize_sql(statement) == expected


def test_normalize_sql_truncates_long_statements() -> None:
    out = normalize_sql("SELECT " + ", ".join(f"col{i}" for i in range(500)))
    assert len(out) == 500 and out.endswith("...")


def test_sqlite_connection_times_every_statement_and_keeps_slow_ones() -> None:
    registry = Registry(slow_query_threshold_s=0.0)  # every statement is "slow"
    db = connect(":memory:", registry=registry)
    db.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
    cur = db.cursor()
    cur.execute("SELECT name FROM t WHERE id = 2 AND name = 'b'")
    assert cur.fetchall() == [("b",)]
    db.executescript("UPDATE t SET name = 'z' WHERE id = 1;")
    snap = registry.snapshot()
    assert (snap.db["sqlite"].queries, snap.db["sqlite"].slow) == (4, 4)
    statements = [q["statement"] for q in snap.recent_slow]
    assert statements[2] == "SELECT name FROM t WHERE id = ? AND name = ?"
    assert statements[3] == "UPDATE t SET name = ? WHERE id = ?;"
    db.close()


def test_fast_statements_are_counted_but_not_kept() -> None:
    registry = Registry(slow_query_threshold_s=60.0)
    db = connect(":memory:", registry=registry)
    db.execute("SELECT 1")
    snap = registry.snapshot()
    assert (snap.db["sqlite"].queries, snap.db["sqlite"].slow) == (1, 0)
    assert snap.recent_slow == ()
    db.close()


def test_track_query_generic_records_system_and_only_50_recent() -> None:
    registry = Registry(slow_query_threshold_s=0.0)
    for i in range(60):
        with track_query(f"SELECT {i}", system="postgresql", registry=registry):
            pass
    snap = registry.snapshot()
    assert (snap.db["postgresql"].queries, snap.db["postgresql"].slow) == (60, 60)
    assert len(snap.recent_slow) == 50
    assert {q["statement"] for q in snap.recent_slow} == {"SELECT ?"}


def test_slow_query_counted_in_window() -> None:
    registry = Registry(slow_query_threshold_s=0.0)
    with track_query("SELECT 1", registry=registry):
        pass
    assert window(registry, 60)["slow_queries"] == 1

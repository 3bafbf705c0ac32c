"""Registry data model, windowed view, quantiles and the cross-worker merge (files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from conftest import call, hello_app, make_environ
from voyagr_wsgi.layers import Metrics
from voyagr_wsgi.metrics import multiprocess, reader
from voyagr_wsgi.metrics.merge import merge
from voyagr_wsgi.metrics.multiprocess import SnapshotWriter, worker_exited
from voyagr_wsgi.metrics.registry import HTTP_BOUNDS, Registry
from voyagr_wsgi.metrics.snapshot import CacheFigures, from_json, to_json
from voyagr_wsgi.metrics.views import bucket_quantile, ring_quantile, window

WINDOW_KEYS = {"window_s", "requests", "latency_s", "caches", "upstreams", "slow_queries"}


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def observe(reg: Registry, n: int, duration: float = 0.02, status: int = 200) -> None:
    for _ in range(n):
        reg.started()
        reg.observe_request("GET", "/r", status, duration, duration / 2, status >= 500)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_window_snapshot_has_the_documented_shape_and_none_rates_when_empty() -> None:
    w = reader.window(Registry(now=Clock()), 60)
    assert set(w) == WINDOW_KEYS
    assert w == {
        "window_s": 60.0,
        "requests": {"total": 0, "errors": 0, "error_rate": None},
        "latency_s": {"p50": None, "p95": None, "p99": None, "avg": None, "max": None},
        "caches": {},
        "upstreams": {},
        "slow_queries": 0,
    }


def test_window_only_counts_slots_inside_the_window() -> None:
    clock = Clock()
    reg = Registry(now=clock)
    observe(reg, 10, status=500)
    reg.cache_event("c", hits=1, misses=9)
    reg.upstream_call("osrm", "timeout", 1.0)
    clock.t += 120
    observe(reg, 30, duration=0.2)
    reg.cache_event("c", hits=3, misses=1)
    reg.upstream_call("osrm", "success", 0.1)
    reg.upstream_call("osrm", "error", 0.1)
    recent = reader.window(reg, 60)
    assert recent["requests"] == {"total": 30, "errors": 0, "error_rate": 0.0}
    assert recent["caches"] == {"c": {"hits": 3, "misses": 1, "hit_rate": 0.75}}
    assert recent["upstreams"] == {
        "osrm": {"calls": 2, "errors": 1, "timeouts": 0, "failure_rate": 0.5}
    }
    assert recent["latency_s"]["avg"] == pytest.approx(0.2)
    assert recent["latency_s"]["max"] == pytest.approx(0.2)
    both = reader.window(reg, 300)
    assert both["requests"] == {"total": 40, "errors": 10, "error_rate": 0.25}
    assert both["upstreams"]["osrm"]["failure_rate"] == pytest.approx(2 / 3)
    assert both["latency_s"]["max"] == pytest.approx(0.2)


def test_slots_older_than_retention_are_dropped() -> None:
    clock = Clock()
    reg = Registry(now=clock, retention_s=60, slot_s=5)
    observe(reg, 1)
    clock.t += 600
    observe(reg, 1)
    assert len(reg.snapshot().slots) == 1


@pytest.mark.parametrize(
    ("q", "counts", "expected"),
    [
        pytest.param(0.5, [10] + [0] * 17, 0.00025, id="all in first bucket: midpoint"),
        pytest.param(0.5, [0] * 9 + [10] + [0] * 8, 0.175, id="0.1..0.25 bucket"),
        pytest.param(0.95, [0] * 17 + [5], 10.0, id="+Inf bucket: highest bound"),
        pytest.param(0.99, [99, 0, 1] + [0] * 15, 0.0005, id="rank on a bucket edge"),
        pytest.param(0.5, [0] * 18, None, id="no observations"),
    ],
)
def test_bucket_quantile_interpolates_like_histogram_quantile(
    q: float, counts: list[int], expected: float | None
) -> None:
    got = bucket_quantile(q, counts, HTTP_BOUNDS)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_ring_quantile_and_seed_ring_of_last_1000() -> None:
    reg = Registry()
    for i in range(1500):
        reg.started()
        reg.observe_request("GET", "/", 200, i / 1000, 0.0, False)
    ring = reg.snapshot().ring
    assert len(ring) == 1000 and ring[0] == 0.5 and ring[-1] == 1.499
    assert ring_quantile(0.5, ring) == pytest.approx(0.9995)
    assert ring_quantile(0.5, ()) is None


def test_merge_sums_counters_and_keeps_max_and_newest_errors() -> None:
    clock = Clock()
    a, b = Registry(now=clock), Registry(now=clock)
    observe(a, 3)
    observe(b, 2, duration=3.0, status=503)
    a.upstream_call("osrm", "success", 0.5)
    b.upstream_call("osrm", "error", 2.0)
    for i in range(40):
        (a if i % 2 else b).record_exception(ValueError(str(i)), "/r")
    merged = merge([a.snapshot(), b.snapshot()])
    assert (merged.total, merged.errors, merged.workers) == (5, 2, 2)
    (ok_series,) = [s for s in merged.series if s.status == 200]
    assert (ok_series.method, ok_series.route, ok_series.requests) == ("GET", "/r", 3)
    osrm = merged.upstreams["osrm"]
    assert (osrm.success, osrm.errors, osrm.timeouts, osrm.sum_s, osrm.max_s) == (1, 1, 0, 2.5, 2.0)
    assert merged.exceptions == {"ValueError": 40}
    assert len(merged.recent_errors) == 40
    w = window(merged, 60, clock.t, 5.0)
    assert w["requests"]["total"] == 5 and w["latency_s"]["max"] == 3.0


def test_two_workers_sharing_a_state_dir_see_each_others_totals(tmp_path: Any) -> None:
    me = Registry(state_dir=str(tmp_path))
    other = Registry(state_dir=str(tmp_path))
    other.pid = os.getppid()  # a live process standing in for another worker
    me.shared = other.shared = True
    observe(me, 4)
    observe(other, 6, status=500)
    multiprocess.write_snapshot(other)
    assert reader.merged(me).total == 10
    assert reader.window(me, 60)["requests"] == {"total": 10, "errors": 6, "error_rate": 0.6}
    observe(other, 1)  # not flushed yet: not visible, never double counted
    assert reader.merged(me).total == 10


def test_a_dead_workers_file_is_folded_into_the_archive_and_totals_never_go_back(
    tmp_path: Any,
) -> None:
    directory = tmp_path / "metrics"
    me = Registry(state_dir=str(tmp_path))
    me.shared = True
    gone = Registry(state_dir=str(tmp_path))
    gone.pid = dead_pid()
    observe(gone, 7)
    gone.cache_size("c", 10, 100)
    gone.cache_event("c", hits=2)
    multiprocess.write_snapshot(gone)
    observe(me, 1)
    totals = [reader.merged(me).total]
    assert sorted(os.listdir(directory)) == sorted(
        ["archive.json", "archive.lock", f"{me.pid}.json"]
    )
    for _ in range(3):
        totals.append(reader.merged(me).total)
    assert totals == [8, 8, 8, 8]
    archive = from_json(json.loads((directory / "archive.json").read_text()))
    assert archive.in_flight == 0 and archive.ring == ()
    assert archive.caches["c"] == CacheFigures(2, 0, 0, 0, None)  # gauges dropped
    assert reader.window(me, 60)["requests"]["total"] == 8  # slots kept too


def test_worker_exited_hook_folds_the_file(tmp_path: Any) -> None:
    worker = Registry(state_dir=str(tmp_path))
    observe(worker, 5)
    multiprocess.write_snapshot(worker)
    worker_exited(str(tmp_path), worker.pid)
    files = os.listdir(tmp_path / "metrics")
    assert f"{worker.pid}.json" not in files
    other = Registry(state_dir=str(tmp_path))
    other.pid = dead_pid()  # any other process
    other.shared = True
    assert reader.merged(other).total == 5
    worker_exited(str(tmp_path), 123456789)  # no file: nothing happens


def test_a_recycled_pid_archives_the_previous_owners_file_first(tmp_path: Any) -> None:
    first = Registry(state_dir=str(tmp_path))
    observe(first, 3)
    multiprocess.write_snapshot(first)
    second = Registry(state_dir=str(tmp_path))  # same pid, new instance (as after reuse)
    second.shared = True
    observe(second, 2)
    assert reader.merged(second).total == 5


def test_reset_removes_every_metrics_file(tmp_path: Any) -> None:
    reg = Registry(state_dir=str(tmp_path))
    multiprocess.write_snapshot(reg)
    multiprocess.reset(str(tmp_path))
    assert not (tmp_path / "metrics").exists()


def test_snapshot_writer_flushes_on_start_and_stop(tmp_path: Any) -> None:
    reg = Registry(state_dir=str(tmp_path))
    writer = SnapshotWriter(reg, interval_s=60)
    assert not writer.singleton
    writer.start()
    try:
        path = tmp_path / "metrics" / f"{reg.pid}.json"
        assert json.loads(path.read_text())["total"] == 0
        assert writer.state()["running"] is True
        observe(reg, 2)
    finally:
        writer.stop(timeout=5)
    assert json.loads(path.read_text())["total"] == 2
    assert writer.state() == {"running": False, "writes": 2, "last_error": None}


def test_forked_child_starts_with_empty_figures() -> None:
    reg = Registry()
    observe(reg, 3)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        os.write(write, json.dumps([reg.total, reg.pid == os.getpid()]).encode())
        os._exit(0)
    os.close(write)
    data = os.read(read, 100)
    os.close(read)
    os.waitpid(pid, 0)
    assert json.loads(data) == [0, True]
    assert reg.total == 3


def test_a_layer_built_before_a_fork_keeps_in_flight_right_in_the_child() -> None:
    """gunicorn's preload_app: the stack (and the layer's bound counter) predate the fork."""
    reg = Registry()
    app = Metrics(hello_app, registry=reg)
    call(app, make_environ("/x"))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        call(app, make_environ("/x"))
        call(app, make_environ("/y"))
        figures = [reg.in_flight, reg.total, reg.snapshot().in_flight]
        os.write(write, json.dumps(figures).encode())
        os._exit(0)
    os.close(write)
    data = os.read(read, 100)
    os.close(read)
    os.waitpid(pid, 0)
    assert json.loads(data) == [0, 2, 0]
    assert (reg.in_flight, reg.total) == (0, 1)


def test_merge_caps_routes_that_different_workers_admitted() -> None:
    workers = [Registry(max_routes=3) for _ in range(4)]
    for w, reg in enumerate(workers):
        for r in range(3):
            for _ in range(r + 1):
                reg.started()
                reg.observe_request("GET", f"/w{w}/r{r}", 200, 0.01, 0.0, False)
    merged = merge([reg.snapshot() for reg in workers], max_routes=3)
    routes = {row.route: row.requests for row in merged.series}
    assert len(routes) == 4  # the 3 busiest plus the overflow bucket
    assert routes["__other__"] == sum(routes.values()) - 9
    assert sum(routes.values()) == 24


@pytest.mark.parametrize(
    ("duration", "most"),
    [
        pytest.param(0.0003, 0.0005, id="0.3 ms route: p95 under 0.5 ms"),
        pytest.param(0.0018, 0.0025, id="1.8 ms route: p95 under 2.5 ms"),
        pytest.param(0.004, 0.005, id="4 ms route: p95 under 5 ms"),
    ],
)
def test_fast_routes_get_percentiles_below_the_otel_5ms_bound(duration: float, most: float) -> None:
    # with OTel's lowest bound (5 ms) every one of these read p95 = 4.75 ms
    from voyagr_wsgi.metrics.views import json_view

    reg = Registry(now=Clock())
    observe(reg, 100, duration=duration)
    route = json_view(reg.snapshot(), now=Clock()(), slot_s=5.0, threshold_s=0.5)["routes"][
        "GET /r"
    ]
    assert duration * 1000 <= route["p95_ms"] <= most * 1000
    assert route["p50_ms"] <= route["p95_ms"] <= route["p99_ms"] <= most * 1000
    window_p95 = reader.window(reg, 60)["latency_s"]["p95"]
    assert window_p95 is not None and window_p95 <= most


def test_snapshot_json_form_has_named_keys_and_reads_back_equal(tmp_path: Any) -> None:
    clock = Clock()
    reg = Registry(now=clock)
    observe(reg, 3, status=503)
    reg.cache_event("c", hits=2, misses=1)
    reg.cache_size("c", 5)
    reg.upstream_call("osrm", "timeout", 0.3)
    reg.query("SELECT ?", 2.0)
    reg.record_exception(ValueError("x"), "/r")
    snap = reg.snapshot()
    doc = json.loads(json.dumps(to_json(snap)))  # what a worker's file holds
    assert doc["version"] == 2
    assert doc["series"][0] | {"buckets": None} == {
        "method": "GET", "route": "/r", "status": 503, "requests": 3, "errors": 3,
        "sum_s": pytest.approx(0.06), "ttfb_sum_s": pytest.approx(0.03), "buckets": None,
        "max_s": 0.02,
    }  # fmt: skip
    assert doc["caches"]["c"] == {
        "hits": 2, "misses": 1, "evictions": 0, "entries": 5, "memory_bytes": None,
        "memory_estimated": False,
    }  # fmt: skip
    assert from_json(doc) == snap


def test_a_file_of_another_format_version_is_skipped_not_merged(tmp_path: Any) -> None:
    me = Registry(state_dir=str(tmp_path))
    me.shared = True
    observe(me, 2)
    old = tmp_path / "metrics" / f"{os.getppid()}.json"  # a live pid, old positional format
    old.parent.mkdir()
    old.write_text(json.dumps({"version": 1, "total": 50, "series": [["GET", "/", 200, 50]]}))
    assert reader.merged(me).total == 2

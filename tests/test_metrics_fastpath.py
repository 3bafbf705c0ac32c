"""The registry's request path: slots found from perf_counter readings, counts from buckets."""

from __future__ import annotations

import time
from time import perf_counter

import pytest

from voyagr_wsgi.metrics import registry as registry_module
from voyagr_wsgi.metrics.reader import window
from voyagr_wsgi.metrics.registry import Registry

SLOT_S = 5.0


class Clock:
    """A wall clock the test moves; counts its reads."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.t


def wall_clock(monkeypatch: pytest.MonkeyPatch, t: float) -> Clock:
    """A Clock the registry treats as the real wall clock (``now`` is ``registry._wall``)."""
    clock = Clock(t)
    monkeypatch.setattr(registry_module, "_wall", clock)
    return clock


def request_counts(reg: Registry) -> dict[int, int]:
    """Requests per slot id, from the slots' duration buckets."""
    slots = reg.snapshot().slots
    return {sid: slot.requests.total for sid, slot in slots.items() if slot.requests.total}


def test_perf_counter_readings_record_the_same_figures_as_wall_clock_reads() -> None:
    with_end, without = Registry(), Registry()
    for i in range(200):
        duration = (i % 7) / 100
        for reg in (with_end, without):
            reg.started()
        with_end.observe_request(
            "GET", "/r", 200 + i % 2, duration, duration / 2, False, perf_counter()
        )
        without.observe_request("GET", "/r", 200 + i % 2, duration, duration / 2, False)
    a, b = with_end.snapshot(), without.snapshot()
    assert a.series == b.series
    assert [row.requests for row in a.series] == [100, 100]  # the bucket sum
    assert (a.total, a.in_flight) == (200, 0)
    assert sum(request_counts(with_end).values()) == 200


def test_the_wall_clock_is_read_once_per_slot_when_the_caller_passes_perf_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = wall_clock(monkeypatch, 1_000_000.0 + 1.0)
    reg = Registry(now=clock)
    reads = clock.reads
    for _ in range(1000):
        reg.observe_request("GET", "/r", 200, 0.001, 0.0005, False, perf_counter())
    assert clock.reads - reads <= 3  # the first rotation (and a real slot boundary, if any)
    reads = clock.reads
    for _ in range(100):
        reg.observe_request("GET", "/r", 200, 0.001, 0.0005, False)
    assert clock.reads - reads == 100  # no reading passed: the wall clock, every time


@pytest.mark.parametrize(
    ("perf_step", "wall_step", "expected"),
    [
        pytest.param(1.0, 1.0, [2], id="inside the slot: same slot"),
        pytest.param(SLOT_S, SLOT_S, [1, 1], id="past the slot's end: the wall clock rotates"),
        pytest.param(-SLOT_S, -SLOT_S, [1, 1], id="before the slot's start: the wall clock too"),
        pytest.param(3 * SLOT_S, 1.0, [2], id="perf past the end, wall inside: the wall decides"),
    ],
)
def test_a_reading_outside_the_slot_falls_back_to_the_wall_clock(
    monkeypatch: pytest.MonkeyPatch, perf_step: float, wall_step: float, expected: list[int]
) -> None:
    clock = wall_clock(monkeypatch, 1_000_000.0 + 2.0)  # 2 s into a slot
    reg = Registry(now=clock, slot_s=SLOT_S)
    start = perf_counter()
    reg.observe_request("GET", "/r", 200, 0.001, 0.0, False, start)
    clock.t += wall_step
    reg.observe_request("GET", "/r", 200, 0.001, 0.0, False, start + perf_step)
    assert sorted(request_counts(reg).values()) == expected


def test_an_injected_clock_ignores_perf_counter_readings() -> None:
    clock = Clock(1_000_000.0)
    reg = Registry(now=clock)
    reg.observe_request("GET", "/r", 200, 0.01, 0.0, False, perf_counter())
    clock.t += 120  # the injected clock moved; perf_counter barely did
    reg.observe_request("GET", "/r", 200, 0.01, 0.0, False, perf_counter())
    assert sorted(request_counts(reg)) == [int(1_000_000.0 // SLOT_S),
                                           int(1_000_120.0 // SLOT_S)]  # fmt: skip
    assert window(reg, 60)["requests"]["total"] == 1


def test_the_real_wall_clock_finds_the_current_slot() -> None:
    reg = Registry(slot_s=SLOT_S)
    before = int(time.time() // SLOT_S)
    reg.observe_request("GET", "/r", 200, 0.01, 0.0, False, perf_counter())
    after = int(time.time() // SLOT_S)
    (sid,) = request_counts(reg)
    assert before <= int(sid) <= after


@pytest.mark.parametrize(
    ("max_routes", "admitted", "repeated", "overflow_series"),
    [
        pytest.param(
            2, [("/a", 200), ("/b", 200)], ("/c", 200), ("GET", "__other__", 200),
            id="route over the route cap",
        ),
        pytest.param(
            1, [("/a", 200 + n) for n in range(10)], ("/a", 599), ("_OTHER", "__other__", 0),
            id="series over the series cap",
        ),
    ],
)  # fmt: skip
def test_every_request_past_a_cap_counts_as_overflow_and_in_the_overflow_series(
    max_routes: int,
    admitted: list[tuple[str, int]],
    repeated: tuple[str, int],
    overflow_series: tuple[str, str, int],
) -> None:
    reg = Registry(max_routes=max_routes)
    for route, status in admitted * 2:  # the second pass finds them indexed
        reg.observe_request("GET", route, status, 0.01, 0.0, False, perf_counter())
    for _ in range(5):
        reg.observe_request("GET", *repeated, 0.01, 0.0, False, perf_counter())
    snap = reg.snapshot()
    counts = {(row.method, row.route, row.status): row.requests for row in snap.series}
    assert snap.overflow == 5
    assert counts[overflow_series] == 5
    assert all(counts[("GET", route, status)] == 2 for route, status in admitted)
    assert snap.total == 2 * len(admitted) + 5

"""What is measured: histogram bounds, label caps, and the small families of the registry.

The :class:`~.registry.Registry` keeps HTTP requests and exceptions itself (the request path)
and delegates to one object per other family: :class:`Caches`, :class:`Upstreams`,
:class:`Queries`. Each holds its counters in plain lists (cheap to add to), records under
the registry's lock (the caller holds it) and turns them into the named rows of
:mod:`.snapshot` with ``figures()``. Nothing here knows WSGI, files or exposition.

Cardinality is bounded: at most :data:`MAX_NAMES` caches, upstreams and exception types;
more are folded into :data:`OVERFLOW`.
"""

from __future__ import annotations

import time
import traceback
from bisect import bisect_left
from collections import deque
from typing import Any

from .snapshot import (
    CacheFigures,
    CacheWindow,
    ExceptionRoute,
    QueryFigures,
    Slot,
    SlotRequests,
    UpstreamFigures,
    UpstreamWindow,
)

__all__ = [
    "DB_BOUNDS",
    "HTTP_BOUNDS",
    "MAX_NAMES",
    "NB",
    "OVERFLOW",
    "UNMATCHED",
    "CacheInfo",
    "Caches",
    "Exceptions",
    "OpenSlot",
    "Queries",
    "Upstreams",
]

#: OpenTelemetry semconv advisory buckets for http.server.request.duration (seconds), with
#: three below its first 5 ms bound: a WSGI app often answers in well under 5 ms, and with 5 ms
#: as the lowest bound every such route's p50/p95/p99 read 2.5/4.75/4.95 ms (interpolated
#: inside 0..5 ms) whatever it really took (the bounds are advisory; PromQL reads any)
HTTP_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025,
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: semconv buckets for db.client.operation.duration (seconds)
DB_BOUNDS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
NB = len(HTTP_BOUNDS) + 1  # buckets incl. +Inf
UNMATCHED = "__unmatched__"
OVERFLOW = "__other__"
MAX_NAMES = 100
#: what a cache poller returns: cumulative (hits, misses, evictions) or None each when the
#: counters come from events, then entries and memory_bytes (None: unknown), optionally
#: followed by True when memory_bytes is an estimate (entries x a sampled entry's size)
CacheInfo = (
    tuple[int | None, int | None, int | None, int, int | None]
    | tuple[int | None, int | None, int | None, int, int | None, bool]
)
_INF = float("inf")  # the minimum of nothing yet

_HITS, _MISSES, _EVICTIONS, _ENTRIES, _BYTES = range(5)  # a cache's list
_RERR, _RSUM, _RMAX, _RHIST = 1, 2, 3, 4  # a slot's requests list
_OK, _ERR, _TIMEOUT, _SUM, _MAX, _HIST = range(6)  # an upstream's list (its min last)
_QUERIES, _SLOW, _QSUM, _QHIST = range(4)  # a database system's list (max, min last)


def _known(minimum: float) -> float | None:
    return None if minimum == _INF else minimum


def _capped(table: dict[str, Any], name: str) -> str:
    return name if name in table or len(table) < MAX_NAMES else OVERFLOW


class Caches:
    """Named caches: hit / miss / eviction counters, entries and memory gauges."""

    def __init__(self) -> None:
        self.counters: dict[str, list[int]] = {}  # bytes -1: unknown; then 1: estimated
        self._polled: dict[str, tuple[int, int, int]] = {}  # last cumulative poll readings

    def delta(self, name: str, hits: int, misses: int, evictions: int | None) -> list[int]:
        """A poller's cumulative (hits, misses, evictions) as the change since its last."""
        cum = (hits, misses, evictions or 0)
        last = self._polled.get(name, (0, 0, 0))
        self._polled[name] = cum
        delta = [c - p for c, p in zip(cum, last, strict=True)]
        return list(cum) if min(delta) < 0 else delta  # cache_clear(): counters restarted

    def _get(self, name: str) -> list[int]:
        return self.counters.setdefault(_capped(self.counters, name), [0, 0, 0, 0, -1, 0])

    def event(self, name: str, hits: int, misses: int, evictions: int, slot: Any) -> None:
        c = self._get(name)
        c[_HITS] += hits
        c[_MISSES] += misses
        c[_EVICTIONS] += evictions
        w = slot.caches.setdefault(name, [0, 0])
        w[0] += hits
        w[1] += misses

    def size(
        self, name: str, entries: int, memory_bytes: int | None, estimated: bool = False
    ) -> None:
        c = self._get(name)
        c[_ENTRIES] = entries
        c[_BYTES] = -1 if memory_bytes is None else memory_bytes
        c[_BYTES + 1] = int(estimated and memory_bytes is not None)

    def figures(self) -> dict[str, CacheFigures]:
        return {
            n: CacheFigures(c[_HITS], c[_MISSES], c[_EVICTIONS], c[_ENTRIES],
                            None if c[_BYTES] < 0 else c[_BYTES], bool(c[_BYTES + 1]))
            for n, c in self.counters.items()
        }  # fmt: skip


class Upstreams:
    """Calls to named upstream services: outcomes and a latency histogram."""

    def __init__(self) -> None:
        self.counters: dict[str, list[float]] = {}  # ok, err, timeout, sum, max, NB buckets, min

    def call(self, name: str, outcome: str, duration_s: float, slot: Any) -> None:
        """``outcome``: ``success``, ``error`` or ``timeout``."""
        col = _OK if outcome == "success" else _TIMEOUT if outcome == "timeout" else _ERR
        u = self.counters.get(name)
        if u is None:
            u = self.counters.setdefault(
                _capped(self.counters, name), [0, 0, 0, 0.0, 0.0] + [0] * NB + [_INF]
            )
        u[col] += 1
        u[_SUM] += duration_s
        if duration_s > u[_MAX]:
            u[_MAX] = duration_s
        if duration_s < u[-1]:
            u[-1] = duration_s
        u[_HIST + bisect_left(HTTP_BOUNDS, duration_s)] += 1
        w = slot.upstreams.setdefault(name, [0, 0, 0])  # calls, errors, timeouts
        w[0] += 1
        if col:
            w[col] += 1

    def figures(self) -> dict[str, UpstreamFigures]:
        return {
            n: UpstreamFigures(int(u[_OK]), int(u[_ERR]), int(u[_TIMEOUT]), u[_SUM], u[_MAX],
                               tuple(int(x) for x in u[_HIST:-1]), _known(u[-1]))
            for n, u in self.counters.items()
        }  # fmt: skip


class Queries:
    """Database statements per system: count, slow count, a latency histogram."""

    def __init__(self, recent: int = 50) -> None:
        self.counters: dict[str, list[float]] = {}  # queries, slow, sum, DB buckets, max, min
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)  # slow statements

    def query(self, system: str, statement: str, duration_s: float, slow: bool, slot: Any) -> None:
        d = self.counters.get(system)
        if d is None:
            d = self.counters.setdefault(
                _capped(self.counters, system),
                [0, 0, 0.0] + [0] * (len(DB_BOUNDS) + 1) + [0.0, _INF],
            )
        d[_QUERIES] += 1
        d[_QSUM] += duration_s
        d[_QHIST + bisect_left(DB_BOUNDS, duration_s)] += 1
        if duration_s > d[-2]:
            d[-2] = duration_s
        if duration_s < d[-1]:
            d[-1] = duration_s
        if slow:
            d[_SLOW] += 1
            slot.slow_queries += 1
            self.recent.append(
                {"time": time.time(), "db": system, "statement": statement,
                 "duration_s": round(duration_s, 6)}
            )  # fmt: skip

    def figures(self) -> dict[str, QueryFigures]:
        return {
            n: QueryFigures(int(d[_QUERIES]), int(d[_SLOW]), d[_QSUM],
                            tuple(int(x) for x in d[_QHIST:-2]), d[-2], _known(d[-1]))
            for n, d in self.counters.items()
        }  # fmt: skip


class OpenSlot:
    """The time slot being filled (read out as a :class:`~.snapshot.Slot`)."""

    __slots__ = ("caches", "requests", "slow_queries", "upstreams")

    def __init__(self) -> None:
        self.requests: list[float] = [0, 0, 0.0, 0.0] + [0] * NB  # the registry adds to it
        self.caches: dict[str, list[int]] = {}  # hits, misses
        self.upstreams: dict[str, list[int]] = {}  # calls, errors, timeouts
        self.slow_queries = 0

    def figures(self) -> Slot:
        r = self.requests
        return Slot(
            SlotRequests(int(r[_RERR]), r[_RSUM], r[_RMAX], tuple(int(x) for x in r[_RHIST:])),
            {n: CacheWindow(*c) for n, c in self.caches.items()},
            {n: UpstreamWindow(*u) for n, u in self.upstreams.items()},
            self.slow_queries,
        )


class Exceptions:
    """Exceptions by type and by (type, route), and the most recent ones in full."""

    def __init__(self, recent: int) -> None:
        self.by_type: dict[str, int] = {}
        self.by_route: dict[tuple[str, str], int] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)

    @staticmethod
    def entry(exc: BaseException, route: str) -> dict[str, Any]:
        """What is kept of one exception (the last five frames, 200 characters)."""
        cls = type(exc)
        name = cls.__qualname__
        if cls.__module__ != "builtins":
            name = f"{cls.__module__}.{name}"
        frames = traceback.extract_tb(exc.__traceback__)[-5:]
        return {
            "time": time.time(),
            "type": name,
            "route": route,
            "message": str(exc)[:200],
            "traceback": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames],
        }

    def record(self, entry: dict[str, Any], max_routes: int) -> None:
        name = _capped(self.by_type, entry["type"])
        self.by_type[name] = self.by_type.get(name, 0) + 1
        key = (name, entry["route"])
        if key in self.by_route or len(self.by_route) < max_routes:
            self.by_route[key] = self.by_route.get(key, 0) + 1
        self.recent.append(entry)

    def figures(self) -> tuple[ExceptionRoute, ...]:
        return tuple(ExceptionRoute(t, r, n) for (t, r), n in self.by_route.items())

"""The typed snapshot: a process's (or a merged set of processes') figures, by name.

:meth:`Registry.snapshot() <.registry.Registry.snapshot>` returns a :class:`Snapshot`; the
readers (:mod:`.merge`, :mod:`.multiprocess`, :mod:`.views`, :mod:`.prometheus`,
:mod:`.health`) read its fields by name (``row.errors``, ``cache.hits``...), never by
position. Rows are ``NamedTuple``s (cheap to build, immutable), histogram buckets a tuple of
counts per bound of :data:`~.families.HTTP_BOUNDS` (or ``DB_BOUNDS``) plus ``+Inf``, with
the largest value observed (``max_s``; upstreams and queries also the smallest, ``min_s``)
so that a percentile read from the buckets can be kept inside what was observed.

:func:`to_json` / :func:`from_json` are the per-worker file format of :mod:`.multiprocess`:
an object with named keys per row (``{"method": "GET", "route": "/r", ...}``), tagged with
:data:`VERSION`. Workers of one release read each other's files; a file of another version
is not read (the format may change between releases; ``multiprocess.reset`` at server start
clears them).

This module imports nothing of the metrics area: the model builds these records, the
readers read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "VERSION",
    "CacheFigures",
    "CacheWindow",
    "ExceptionRoute",
    "QueryFigures",
    "Series",
    "Slot",
    "SlotRequests",
    "Snapshot",
    "UpstreamFigures",
    "UpstreamWindow",
    "from_json",
    "to_json",
]

VERSION = 2  # of the JSON form; 1 was positional lists


class Series(NamedTuple):
    """One ``(method, route, status)`` series of HTTP requests."""

    method: str
    route: str
    status: int
    requests: int
    errors: int
    sum_s: float  # durations, seconds
    ttfb_sum_s: float  # times to first byte, seconds
    buckets: tuple[int, ...]  # per HTTP_BOUNDS, then +Inf
    max_s: float = 0.0  # the slowest request


class CacheFigures(NamedTuple):
    hits: int
    misses: int
    evictions: int
    entries: int  # a gauge
    memory_bytes: int | None  # a gauge; None: unknown
    memory_estimated: bool = False  # memory_bytes is entries x a sampled entry's size


class UpstreamFigures(NamedTuple):
    success: int
    errors: int
    timeouts: int
    sum_s: float
    max_s: float
    buckets: tuple[int, ...]  # per HTTP_BOUNDS, then +Inf
    min_s: float | None = None  # the fastest call (None: unknown)

    @property
    def calls(self) -> int:
        return self.success + self.errors + self.timeouts


class QueryFigures(NamedTuple):
    """Database statements of one system (``sqlite``, ``postgresql``...)."""

    queries: int
    slow: int
    sum_s: float
    buckets: tuple[int, ...]  # per DB_BOUNDS, then +Inf
    max_s: float = 0.0  # the slowest statement
    min_s: float | None = None  # the fastest statement (None: unknown)


class ExceptionRoute(NamedTuple):
    type: str
    route: str
    raised: int


class SlotRequests(NamedTuple):
    """The requests finished in one time slot."""

    errors: int
    sum_s: float
    max_s: float
    buckets: tuple[int, ...]  # per HTTP_BOUNDS, then +Inf

    @property
    def total(self) -> int:
        return sum(self.buckets)


class CacheWindow(NamedTuple):
    hits: int
    misses: int


class UpstreamWindow(NamedTuple):
    calls: int
    errors: int
    timeouts: int


class Slot(NamedTuple):
    """Figures of one ``slot_s``-wide time slot (the alert windows are sums of slots)."""

    requests: SlotRequests
    caches: dict[str, CacheWindow]
    upstreams: dict[str, UpstreamWindow]
    slow_queries: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Figures of one process (``pid`` set), or merged (``workers`` processes, ``pid`` None).

    Counters only grow; ``in_flight``, cache ``entries`` / ``memory_bytes`` and ``ring`` (the
    most recent durations) are gauges of live processes. ``slots`` maps a slot number
    (``int(wall_time // slot_s)``) to its figures.
    """

    started_at: float  # wall clock
    written_at: float  # wall clock
    in_flight: int = 0
    total: int = 0
    errors: int = 0
    overflow: int = 0  # figures folded into "__other__" by a label cap
    series: tuple[Series, ...] = ()
    ring: tuple[float, ...] = ()
    #: merged snapshots: each ring entry's estimated slot, ``sid + (k + 0.5) / n`` for the
    #: k-th of the n requests of slot ``sid`` (see :func:`.merge.ring_positions`); empty in a
    #: process's own snapshot, where it follows from ``ring`` and ``slots``
    ring_slots: tuple[float, ...] = ()
    exceptions: dict[str, int] = field(default_factory=dict)
    exc_routes: tuple[ExceptionRoute, ...] = ()
    recent_errors: tuple[dict[str, Any], ...] = ()
    caches: dict[str, CacheFigures] = field(default_factory=dict)
    upstreams: dict[str, UpstreamFigures] = field(default_factory=dict)
    db: dict[str, QueryFigures] = field(default_factory=dict)
    recent_slow: tuple[dict[str, Any], ...] = ()
    slots: dict[int, Slot] = field(default_factory=dict)
    #: the layers' decision counters (:class:`voyagr_wsgi.counters.Counters` figures)
    counts: dict[str, int] = field(default_factory=dict)
    pid: int | None = None
    instance: str = ""
    workers: int = 1


def _row(values: tuple[Any, ...]) -> Any:
    """A NamedTuple as a JSON object (buckets as a list)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values._asdict().items()}  # type: ignore[attr-defined]


def to_json(snap: Snapshot) -> dict[str, Any]:
    """The JSON form, named keys throughout (see the module documentation)."""
    doc: dict[str, Any] = {
        "version": VERSION, "pid": snap.pid, "instance": snap.instance,
        "workers": snap.workers, "started_at": snap.started_at, "written_at": snap.written_at,
        "in_flight": snap.in_flight, "total": snap.total, "errors": snap.errors,
        "overflow": snap.overflow, "ring": list(snap.ring),
        "ring_slots": list(snap.ring_slots), "exceptions": snap.exceptions,
        "recent_errors": list(snap.recent_errors), "recent_slow": list(snap.recent_slow),
        "counts": snap.counts,
    }  # fmt: skip
    doc["series"] = [_row(s) for s in snap.series]
    doc["exc_routes"] = [r._asdict() for r in snap.exc_routes]
    doc["caches"] = {n: c._asdict() for n, c in snap.caches.items()}
    doc["upstreams"] = {n: _row(u) for n, u in snap.upstreams.items()}
    doc["db"] = {n: _row(q) for n, q in snap.db.items()}
    doc["slots"] = {
        str(sid): {
            "requests": _row(slot.requests),
            "caches": {n: c._asdict() for n, c in slot.caches.items()},
            "upstreams": {n: u._asdict() for n, u in slot.upstreams.items()},
            "slow_queries": slot.slow_queries,
        }
        for sid, slot in snap.slots.items()
    }
    return doc


def _buckets(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "buckets": tuple(row["buckets"])}


def from_json(doc: dict[str, Any]) -> Snapshot:
    """A snapshot read back from :func:`to_json`'s form; ``ValueError`` for another version."""
    if doc.get("version") != VERSION:
        raise ValueError(f"metrics snapshot version {doc.get('version')!r}, not {VERSION}")
    return Snapshot(
        started_at=doc["started_at"],
        written_at=doc["written_at"],
        in_flight=doc["in_flight"],
        total=doc["total"],
        errors=doc["errors"],
        overflow=doc["overflow"],
        series=tuple(Series(**_buckets(s)) for s in doc["series"]),
        ring=tuple(doc["ring"]),
        ring_slots=tuple(doc.get("ring_slots", ())),
        exceptions=dict(doc["exceptions"]),
        exc_routes=tuple(ExceptionRoute(**r) for r in doc["exc_routes"]),
        recent_errors=tuple(doc["recent_errors"]),
        caches={n: CacheFigures(**c) for n, c in doc["caches"].items()},
        upstreams={n: UpstreamFigures(**_buckets(u)) for n, u in doc["upstreams"].items()},
        db={n: QueryFigures(**_buckets(q)) for n, q in doc["db"].items()},
        recent_slow=tuple(doc["recent_slow"]),
        slots={
            int(sid): Slot(
                SlotRequests(**_buckets(s["requests"])),
                {n: CacheWindow(**c) for n, c in s["caches"].items()},
                {n: UpstreamWindow(**u) for n, u in s["upstreams"].items()},
                s["slow_queries"],
            )
            for sid, s in doc["slots"].items()
        },
        counts=dict(doc.get("counts", {})),
        pid=doc["pid"],
        instance=doc["instance"],
        workers=doc["workers"],
    )

"""Merging per-worker snapshots: sum counters, keep the newest events, cap the routes.

Pure functions over :class:`~.snapshot.Snapshot` (rows are summed field by field, by name),
used by :mod:`.multiprocess` for the live view and for the archive of exited workers. The
merged ring of recent durations is every live worker's ring, each entry placed in its slot
(:func:`ring_positions`), so readers can take the newest across workers or a window's exact
figures. A
snapshot without a ``pid`` (the archive) carries counters only: :func:`as_archive` drops its
gauges (in flight, cache entries and memory) and its ring of recent durations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

from .families import OVERFLOW
from .snapshot import CacheFigures, ExceptionRoute, Series, Slot, Snapshot

__all__ = ["UNKNOWN_SLOT", "as_archive", "merge", "plus", "ring_positions"]

Row = TypeVar("Row", bound=tuple[Any, ...])
_LABELS = frozenset({"method", "route", "status"})  # a series' key: kept, not summed
_PEAKS = frozenset({"max_s"})  # the largest wins
_LOWS = frozenset({"min_s"})  # the smallest known wins
_FLAGS = frozenset({"memory_estimated"})  # true if either is


def _counts(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if len(a) < len(b):
        a, b = b, a
    return tuple(x + (b[i] if i < len(b) else 0) for i, x in enumerate(a))


def plus(a: Row, b: Row) -> Row:
    """Two rows of one kind added up field by field (labels kept, ``max_s`` the larger,
    ``min_s`` the smaller known, buckets element-wise, a ``None`` gauge counting as unknown)."""
    values: dict[str, Any] = {}
    for name in a._fields:  # type: ignore[attr-defined]
        x, y = getattr(a, name), getattr(b, name)
        if name in _LABELS:
            values[name] = x
        elif name in _PEAKS:
            values[name] = max(x, y)
        elif name in _LOWS:
            values[name] = y if x is None else x if y is None else min(x, y)
        elif name in _FLAGS:
            values[name] = x or y
        elif isinstance(x, tuple):
            values[name] = _counts(x, y)
        elif x is None or y is None:
            values[name] = y if x is None else x
        else:
            values[name] = x + y
    return type(a)(**values)


#: the position of a ring entry older than every slot kept
UNKNOWN_SLOT = -1.0


def ring_positions(snap: Snapshot) -> tuple[float, ...]:
    """Each ring entry's estimated slot, ``sid + (k + 0.5) / n`` for the k-th of slot ``sid``'s
    n requests (:data:`UNKNOWN_SLOT` when older than the slots kept).

    The ring holds durations only (the request path appends a float, nothing more); a
    process records a request's duration and its slot under one lock, so its ring read from
    the end is its slots' requests, newest slot first. A merged snapshot carries the
    positions of its workers' rings (``ring_slots``); a process's own snapshot derives them
    here. Positions order entries across workers to the slot; inside a slot each worker's
    requests are spread evenly (the newest of a slot are taken from each worker in
    proportion). A wall clock stepping back may misplace the entries of that step.
    """
    if snap.pid is None or snap.ring_slots:
        return snap.ring_slots
    remaining = len(snap.ring)
    chunks: list[list[float]] = []
    for sid in sorted(snap.slots, reverse=True):
        if remaining <= 0:
            break
        n = snap.slots[sid].requests.total
        take = min(n, remaining)
        if take:
            chunks.append([sid + (k + 0.5) / n for k in range(n - take, n)])
            remaining -= take
    out = [UNKNOWN_SLOT] * remaining
    for chunk in reversed(chunks):
        out.extend(chunk)
    return tuple(out)


def _add(into: dict[Any, Row], key: Any, row: Row) -> None:
    have = into.get(key)
    into[key] = row if have is None else plus(have, row)


def _add_slot(a: Slot | None, b: Slot) -> Slot:
    if a is None:
        return b
    caches, upstreams = dict(a.caches), dict(a.upstreams)
    for name, c in b.caches.items():
        _add(caches, name, c)
    for name, u in b.upstreams.items():
        _add(upstreams, name, u)
    return Slot(plus(a.requests, b.requests), caches, upstreams, a.slow_queries + b.slow_queries)


def merge(snaps: Iterable[Snapshot], recent: int = 50, max_routes: int = 200) -> Snapshot:
    """Sum counters, sum live gauges, keep the newest ``recent`` errors and slow queries.

    Each worker caps its routes, but two workers may admit different ones: the merge keeps
    the ``max_routes`` busiest and folds the rest into ``"__other__"``, so the archive of
    many recycled workers stays bounded.
    """
    snaps = list(snaps)
    series: dict[tuple[str, str, int], Series] = {}
    exc_routes: dict[tuple[str, str], int] = {}
    exceptions: dict[str, int] = {}
    caches: dict[str, CacheFigures] = {}
    upstreams: dict[str, Any] = {}
    db: dict[str, Any] = {}
    slots: dict[int, Slot] = {}
    counts: dict[str, int] = {}
    for s in snaps:
        for key, n in s.counts.items():
            counts[key] = counts.get(key, 0) + n
        for row in s.series:
            _add(series, (row.method, row.route, row.status), row)
        for name, n in s.exceptions.items():
            exceptions[name] = exceptions.get(name, 0) + n
        for e in s.exc_routes:
            exc_routes[(e.type, e.route)] = exc_routes.get((e.type, e.route), 0) + e.raised
        for name, c in s.caches.items():
            _add(caches, name, c)
        for name, u in s.upstreams.items():
            _add(upstreams, name, u)
        for name, q in s.db.items():
            _add(db, name, q)
        for sid, slot in s.slots.items():
            slots[sid] = _add_slot(slots.get(sid), slot)
    keep = _busiest_routes(series.values(), max_routes)
    capped: dict[tuple[str, str, int], Series] = {}
    for row in series.values():
        if row.route not in keep:
            row = row._replace(route=OVERFLOW)
        _add(capped, (row.method, row.route, row.status), row)
    exc_capped: dict[tuple[str, str], int] = {}
    for (t, r), n in exc_routes.items():
        exc_key = (t, r if r in keep else OVERFLOW)
        exc_capped[exc_key] = exc_capped.get(exc_key, 0) + n
    return Snapshot(
        started_at=min((s.started_at for s in snaps), default=0.0),
        written_at=max((s.written_at for s in snaps), default=0.0),
        workers=sum(1 for s in snaps if s.pid is not None),
        in_flight=sum(s.in_flight for s in snaps),
        total=sum(s.total for s in snaps),
        errors=sum(s.errors for s in snaps),
        overflow=sum(s.overflow for s in snaps),
        series=tuple(capped.values()),
        ring=tuple(x for s in snaps for x in s.ring),
        ring_slots=tuple(p for s in snaps for p in _positions(s)),
        exceptions=exceptions,
        exc_routes=tuple(ExceptionRoute(t, r, n) for (t, r), n in exc_capped.items()),
        recent_errors=_newest((e for s in snaps for e in s.recent_errors), recent),
        caches=caches,
        upstreams=upstreams,
        db=db,
        recent_slow=_newest((e for s in snaps for e in s.recent_slow), recent),
        slots=slots,
        counts=counts,
    )


def _positions(snap: Snapshot) -> tuple[float, ...]:
    positions = ring_positions(snap)
    if len(positions) != len(snap.ring):  # a file that carried none: order unknown
        return (UNKNOWN_SLOT,) * len(snap.ring)
    return positions


def _newest(events: Iterable[dict[str, Any]], limit: int) -> tuple[dict[str, Any], ...]:
    return tuple(sorted(events, key=lambda e: e["time"])[-limit:])


def _busiest_routes(series: Iterable[Series], limit: int) -> set[str]:
    counts: dict[str, int] = {}
    for row in series:
        counts[row.route] = counts.get(row.route, 0) + row.requests
    if len(counts) <= limit:
        return set(counts)
    return set(sorted(counts, key=lambda r: -counts[r])[:limit])


def as_archive(snap: Snapshot, oldest_slot: int) -> Snapshot:
    """A dead worker's counters, without its live gauges and its ring."""
    return replace(
        snap,
        pid=None,
        in_flight=0,
        ring=(),
        ring_slots=(),
        caches={
            n: c._replace(entries=0, memory_bytes=None, memory_estimated=False)
            for n, c in snap.caches.items()
        },
        slots={k: v for k, v in snap.slots.items() if k >= oldest_slot},
    )

"""Merging per-worker snapshots: sum counters, keep the newest events, cap the routes.

Pure functions over the dicts :meth:`~.registry.Registry.snapshot` returns, used by
:mod:`.multiprocess` for the live view and for the archive of exited workers. A snapshot
without a ``pid`` (the archive) carries counters only: :func:`as_archive` drops its gauges
(in flight, cache entries and memory) and its ring of recent durations.
"""

from __future__ import annotations

from typing import Any

from .registry import OVERFLOW

__all__ = ["as_archive", "merge"]


def _add(into: list[Any], more: list[Any], max_at: int = -1) -> None:
    if len(into) < len(more):
        into.extend([0] * (len(more) - len(into)))
    for i, value in enumerate(more):
        into[i] = max(into[i], value) if i == max_at else into[i] + value


def _add_map(into: dict[str, list[Any]], more: dict[str, list[Any]], max_at: int = -1) -> None:
    for key, values in more.items():
        _add(into.setdefault(key, []), values, max_at)


def merge(snaps: list[dict[str, Any]], recent: int = 50, max_routes: int = 200) -> dict[str, Any]:
    """Sum counters, sum live gauges, keep the newest ``recent`` errors and slow queries.

    Each worker caps its routes, but two workers may admit different ones: the merge keeps
    the ``max_routes`` busiest and folds the rest into ``"__other__"``, so the archive of
    many recycled workers stays bounded.
    """
    out: dict[str, Any] = {
        "version": 1, "started_at": min((s["started_at"] for s in snaps), default=0.0),
        "written_at": max((s["written_at"] for s in snaps), default=0.0),
        "workers": sum(1 for s in snaps if s.get("pid") is not None),
        "in_flight": 0, "total": 0, "errors": 0, "overflow": 0, "ring": [], "exceptions": {},
        "recent_errors": [], "caches": {}, "upstreams": {}, "db": {}, "recent_slow": [],
    }  # fmt: skip
    series: dict[tuple[Any, ...], list[Any]] = {}
    exc_routes: dict[tuple[Any, ...], int] = {}
    slots: dict[str, dict[str, Any]] = {}
    for s in snaps:
        for key in ("in_flight", "total", "errors", "overflow"):
            out[key] += s[key]
        out["ring"].extend(s["ring"])
        for name, n in s["exceptions"].items():
            out["exceptions"][name] = out["exceptions"].get(name, 0) + n
        for t, r, n in s["exc_routes"]:
            exc_routes[(t, r)] = exc_routes.get((t, r), 0) + n
        for row in s["series"]:
            _add(series.setdefault(tuple(row[:3]), []), row[3:])
        out["recent_errors"].extend(s["recent_errors"])
        out["recent_slow"].extend(s["recent_slow"])
        _add_map(out["upstreams"], s["upstreams"], max_at=4)
        _add_map(out["db"], s["db"])
        for name, c in s["caches"].items():
            have = out["caches"].setdefault(name, [0, 0, 0, 0, -1])
            _add(have, c[:4])
            if c[4] >= 0:
                have[4] = max(have[4], 0) + c[4]
        for sid, slot in s["slots"].items():
            have = slots.setdefault(sid, {"r": [], "c": {}, "u": {}, "q": 0})
            _add(have["r"], slot["r"], max_at=3)
            _add_map(have["c"], slot["c"])
            _add_map(have["u"], slot["u"])
            have["q"] += slot["q"]
    keep = _busiest_routes(series, max_routes)
    capped: dict[tuple[Any, ...], list[Any]] = {}
    for (method, route, status), values in series.items():
        row_key = (method, route if route in keep else OVERFLOW, status)
        _add(capped.setdefault(row_key, []), values)
    out["series"] = [[*k, *v] for k, v in capped.items()]
    exc_capped: dict[tuple[str, str], int] = {}
    for (t, r), n in exc_routes.items():
        exc_key = (t, r if r in keep else OVERFLOW)
        exc_capped[exc_key] = exc_capped.get(exc_key, 0) + n
    out["exc_routes"] = [[t, r, n] for (t, r), n in exc_capped.items()]
    out["slots"] = slots
    for key in ("recent_errors", "recent_slow"):
        out[key] = sorted(out[key], key=lambda e: e["time"])[-recent:]
    return out


def _busiest_routes(series: dict[tuple[Any, ...], list[Any]], limit: int) -> set[str]:
    counts: dict[str, float] = {}
    for (_method, route, _status), values in series.items():
        counts[route] = counts.get(route, 0) + values[0]
    if len(counts) <= limit:
        return set(counts)
    return set(sorted(counts, key=lambda r: -counts[r])[:limit])


def as_archive(snap: dict[str, Any], oldest_slot: int) -> dict[str, Any]:
    """A dead worker's counters, without its live gauges and its ring."""
    snap = dict(snap, pid=None, in_flight=0, ring=[])
    snap["caches"] = {n: [*c[:3], 0, -1] for n, c in snap["caches"].items()}
    snap["slots"] = {k: v for k, v in snap["slots"].items() if int(k) >= oldest_slot}
    return snap

"""Read-only views of a (merged) snapshot: the JSON document and the windowed figures.

Pure functions over the :class:`~.snapshot.Snapshot` :meth:`Registry.snapshot` returns (or
:mod:`.merge` merges), read by field name, so the JSON endpoint, the dashboard, the health
checks and the alert rules all read the same numbers.

- :func:`json_view`: the seed's ``/api/production/metrics`` document. Besides the lifetime
  counters (``requests``, ``routes``, ``errors``, ``caches``, ``upstreams``, ``database``)
  and the last minute (``window``), it carries the seed's response-time histogram over the
  last 1000 requests, merged across workers (:func:`last_requests`)::

    "last_1000": {"count": 1000,
                  "buckets": [{"le": 0.0005, "count": 412}, ..., {"le": "+Inf", "count": 0}],
                  "p50_ms": 0.61, "p95_ms": 3.9, "p99_ms": 12.2, "max_ms": 48.0}

  ``buckets`` are per-bucket counts (not cumulative) over :data:`~.families.HTTP_BOUNDS`
  (seconds, ``le`` = at most), then ``"+Inf"``; the percentiles and the max are exact, from
  the durations themselves. Each worker keeps its most recent durations (a ring of
  ``ring_size``, 1000); the merge places every entry in its time slot
  (:func:`.merge.ring_positions`) and takes the newest 1000 of the union, so which ones
  count is exact to the slot (``slot_s``, 5 s) and, inside the newest slot that does not
  fit whole, taken from each worker in proportion. ``requests.p50_ms`` / ``p95_ms`` /
  ``p99_ms`` are these. A cache's ``memory_bytes`` comes with ``memory_estimated``
  (``true``: entries x a sampled entry's size, see :mod:`.sizing`). Upstreams and
  database systems report ``max_ms`` next to their ``p95_ms``.
- :func:`window`: the last ``window_s`` seconds, the shape the alert rules consume::

    {"window_s": 60.0,
     "requests": {"total": 120, "errors": 3, "error_rate": 0.025},
     "latency_s": {"p50": 0.04, "p95": 0.3, "p99": 0.7, "avg": 0.06, "max": 1.2},
     "caches": {"routes": {"hits": 90, "misses": 10, "hit_rate": 0.9}},
     "upstreams": {"osrm": {"calls": 20, "errors": 1, "timeouts": 1, "failure_rate": 0.1}},
     "slow_queries": 0}

  ``errors`` counts 5xx responses plus requests that raised; upstream ``errors`` excludes
  ``timeouts`` and ``failure_rate`` counts both. Rates are ``None`` when the window holds no
  event.

  Percentiles never leave what was observed. Where the ring of recent durations holds
  every request of the window (up to ``ring_size`` requests per worker in it, and no
  worker that exited within it) they are exact (linear between the two nearest
  durations, as numpy's default). Otherwise they come from the OpenTelemetry buckets the
  way PromQL's ``histogram_quantile`` interpolates, kept inside the observed range by
  :func:`bounded_quantile`: at most the largest duration seen, and, as no minimum is kept
  on the request path, a rank in the lowest occupied bucket reads that bucket's top (so a
  single 0.24 ms request reads 0.24 ms at p50, p95 and p99, where plain interpolation said
  0.475 ms at p95). The same holds for the history's points (each slot exact when the ring
  holds it whole), the routes (bucketed, kept under each route's max), upstreams and
  database systems (bucketed, kept inside their min and max: no slow-query p95 above the
  slowest statement).
- :func:`history`: one point per slot over the retention (what the dashboard opens with)::

    {"now": 1764852000.0, "slot_s": 5.0, "retention_s": 900.0, "points": [
      {"t": 1764851100.0, "span_s": 5.0, "requests": 12, "errors": 1, "rate": 2.4,
       "error_rate": 0.083, "p50_ms": 3.1, "p95_ms": 9.8, "p99_ms": 12.0, "max_ms": 12.4,
       "avg_ms": 4.2, "slow_queries": 0,
       "caches": {"routes": {"hits": 9, "misses": 1, "hit_rate": 0.9}},
       "upstreams": {"osrm": {"calls": 4, "errors": 0, "timeouts": 1, "rate": 0.8,
                              "success_rate": 0.75}}}, ...]}

  ``t`` is the slot's start (wall clock, seconds), ``span_s`` its length (the current slot's
  elapsed part), ``rate`` events per second of the span. Every slot from the oldest kept (or
  the registry's start) to the current one has a point, an idle one with zero requests and
  ``None`` rates; ``since`` keeps the points with ``t >= since`` (for polling).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from .families import DB_BOUNDS, HTTP_BOUNDS, NB
from .merge import plus, ring_positions
from .snapshot import CacheWindow, Slot, SlotRequests, Snapshot, UpstreamWindow

__all__ = [
    "LAST",
    "bounded_quantile",
    "bucket_quantile",
    "history",
    "json_view",
    "last_requests",
    "ring_quantile",
    "window",
]

#: how many of the newest requests ``last_1000`` summarises (the seed's figure)
LAST = 1000
_QS = (0.5, 0.95, 0.99)


def bucket_quantile(
    q: float, counts: Sequence[float], bounds: Sequence[float] = HTTP_BOUNDS
) -> float | None:
    """``histogram_quantile``: linear interpolation inside the bucket holding rank q."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, count in enumerate(counts):
        if count and cumulative + count >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = bounds[i - 1] if i else 0.0
            return float(lower + (bounds[i] - lower) * (rank - cumulative) / count)
        cumulative += count
    return float(bounds[-1])


def ring_quantile(q: float, values: Sequence[float]) -> float | None:
    """Linear-interpolated quantile of raw values (the ring of recent response times)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def bounded_quantile(
    q: float,
    counts: Sequence[float],
    lo: float | None,
    hi: float,
    bounds: Sequence[float] = HTTP_BOUNDS,
) -> float | None:
    """A percentile from bucket counts that never leaves the observed ``[lo, hi]``.

    :func:`bucket_quantile` assumes values spread evenly inside a bucket: one 0.24 ms
    request in the 0-0.5 ms bucket would read p95 0.475 ms. Here the result is kept at or
    below ``hi`` (the largest value seen; 0: unknown, then no cap) and the ``+Inf`` bucket
    reaches up to it; at or above ``lo`` (the smallest). With no smallest kept (``lo``
    None: the request path keeps none), a rank falling in the lowest occupied bucket reads
    that bucket's upper bound (capped at ``hi``): an estimate from above, never below
    every observation. Any other bucket's interpolation already lies above the lowest
    occupied one, so nothing reported is outside what was observed.
    """
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    lowest = True
    value = hi if hi > 0 else float(bounds[-1])
    for i, count in enumerate(counts):
        if not count:
            continue
        if cumulative + count >= rank:
            lower = float(bounds[i - 1]) if i else 0.0
            upper = float(bounds[i]) if i < len(bounds) else max(hi, lower)
            if lowest and lo is None:
                value = upper
            else:
                value = lower + (upper - lower) * (rank - cumulative) / count
            break
        cumulative += count
        lowest = False
    if hi > 0:
        value = min(value, hi)
    return value if lo is None else max(value, lo)


def _exact_or_bounded(
    q: float, exact: Sequence[float] | None, counts: Sequence[float], lo: float | None, hi: float
) -> float | None:
    if exact:
        return ring_quantile(q, exact)
    return bounded_quantile(q, counts, lo, hi)


def _ring_by_slot(snap: Snapshot) -> dict[int, list[float]]:
    """The ring's durations grouped by their slot (see :func:`.merge.ring_positions`)."""
    out: dict[int, list[float]] = {}
    for value, pos in zip(snap.ring, ring_positions(snap), strict=False):
        if pos >= 0:
            out.setdefault(int(pos), []).append(value)
    return out


def last_requests(snap: Snapshot, limit: int = LAST) -> dict[str, Any]:
    """The newest ``limit`` requests across workers: count, per-bucket counts, exact
    p50/p95/p99 and max (the ``last_1000`` of :func:`json_view`)."""
    ring = snap.ring
    positions = ring_positions(snap)
    if len(positions) != len(ring):
        positions = (0.0,) * len(ring)
    order = sorted(range(len(ring)), key=positions.__getitem__)  # stable: a worker's order
    values = [ring[i] for i in order[-limit:]] if limit > 0 else []
    counts = [0] * NB
    for value in values:
        counts[bisect_left(HTTP_BOUNDS, value)] += 1
    les: list[float | str] = [*HTTP_BOUNDS, "+Inf"]
    doc: dict[str, Any] = {
        "count": len(values),
        "buckets": [{"le": le, "count": n} for le, n in zip(les, counts, strict=True)],
    }
    for q in _QS:
        doc[f"p{round(q * 100)}_ms"] = _ms(ring_quantile(q, values))
    doc["max_ms"] = _ms(max(values)) if values else None
    return doc


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else num / den


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def window(snap: Snapshot, window_s: float, now: float, slot_s: float) -> dict[str, Any]:
    """The figures of the slots covering the last ``window_s`` seconds."""
    first = int((now - window_s) // slot_s) + 1
    last = int(now // slot_s)
    counts = [0] * NB
    errors = sum_s = max_s = 0.0
    caches: dict[str, CacheWindow] = {}
    ups: dict[str, UpstreamWindow] = {}
    slow = 0
    for sid, slot in snap.slots.items():
        if not first <= sid <= last:
            continue
        r = slot.requests
        errors += r.errors
        sum_s += r.sum_s
        max_s = max(max_s, r.max_s)
        for i, n in enumerate(r.buckets):
            counts[i] += n
        for name, c in slot.caches.items():
            caches[name] = plus(caches[name], c) if name in caches else c
        for name, u in slot.upstreams.items():
            ups[name] = plus(ups[name], u) if name in ups else u
        slow += slot.slow_queries
    total = int(sum(counts))
    recent = [
        v for v, p in zip(snap.ring, ring_positions(snap), strict=False) if first <= p < last + 1
    ]
    exact = recent if total and len(recent) == total else None  # the ring covers the window

    def pct(q: float) -> float | None:
        return _exact_or_bounded(q, exact, counts, None, max_s)

    return {
        "window_s": float(window_s),
        "requests": {"total": total, "errors": int(errors), "error_rate": _ratio(errors, total)},
        "latency_s": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "avg": _ratio(sum_s, total),
            "max": max_s if total else None,
        },
        "caches": {
            n: {"hits": c.hits, "misses": c.misses, "hit_rate": _ratio(c.hits, c.hits + c.misses)}
            for n, c in caches.items()
        },
        "upstreams": {
            n: {
                "calls": u.calls,
                "errors": u.errors,
                "timeouts": u.timeouts,
                "failure_rate": _ratio(u.errors + u.timeouts, u.calls),
            }
            for n, u in ups.items()
        },
        "slow_queries": slow,
    }


def history(
    snap: Snapshot,
    *,
    now: float,
    slot_s: float,
    retention_s: float,
    since: float | None = None,
) -> dict[str, Any]:
    """The per-slot points of the retention (see the module docstring)."""
    last = int(now // slot_s)
    first = max(int((now - retention_s) // slot_s) + 1, int(snap.started_at // slot_s))
    if since is not None:
        first = max(first, int(since // slot_s) + (since % slot_s > 0))
    empty = Slot(SlotRequests(0, 0.0, 0.0, (0,) * NB), {}, {}, 0)
    ring = _ring_by_slot(snap)
    points = []
    for sid in range(first, last + 1):
        slot = snap.slots.get(sid, empty)
        r = slot.requests
        counts = r.buckets
        n = int(sum(counts))
        t = sid * slot_s
        span = min(slot_s, max(now - t, 1e-3))

        exact = ring.get(sid)
        if exact is not None and len(exact) != n:  # the ring holds part of the slot
            exact = None

        def pct(
            q: float, exact: Sequence[float] | None = exact, r: SlotRequests = r
        ) -> float | None:
            return _ms(_exact_or_bounded(q, exact, r.buckets, None, r.max_s))

        points.append(
            {
                "t": t, "span_s": round(span, 3), "requests": n, "errors": int(r.errors),
                "rate": round(n / span, 3), "error_rate": _ratio(r.errors, n),
                "p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
                "max_ms": _ms(r.max_s) if n else None, "avg_ms": _ms(_ratio(r.sum_s, n)),
                "slow_queries": slot.slow_queries,
                "caches": {
                    name: {"hits": c.hits, "misses": c.misses,
                           "hit_rate": _ratio(c.hits, c.hits + c.misses)}
                    for name, c in sorted(slot.caches.items())
                },
                "upstreams": {
                    name: {"calls": u.calls, "errors": u.errors, "timeouts": u.timeouts,
                           "rate": round(u.calls / span, 3),
                           "success_rate": _ratio(u.calls - u.errors - u.timeouts, u.calls)}
                    for name, u in sorted(slot.upstreams.items())
                },
            }
        )  # fmt: skip
    return {"now": now, "slot_s": slot_s, "retention_s": retention_s, "points": points}


def _routes(snap: Snapshot) -> dict[str, Any]:
    grouped: dict[str, dict[str, Any]] = {}
    for row in snap.series:
        g = grouped.setdefault(
            f"{row.method} {row.route}",
            {"method": row.method, "route": row.route, "count": 0, "errors": 0, "sum": 0.0,
             "buckets": [0] * NB, "statuses": {}, "max": 0.0},
        )  # fmt: skip
        g["max"] = max(g["max"], row.max_s)
        g["count"] += row.requests
        g["errors"] += row.errors
        g["sum"] += row.sum_s
        for i, n in enumerate(row.buckets):
            g["buckets"][i] += n
        g["statuses"][str(row.status)] = g["statuses"].get(str(row.status), 0) + row.requests
    out: dict[str, Any] = {}
    for key, g in sorted(grouped.items(), key=lambda kv: -kv[1]["count"]):
        counts = g.pop("buckets")
        total_s = g.pop("sum")
        hi = g.pop("max")
        g["error_rate"] = _ratio(g["errors"], g["count"])
        g["avg_ms"] = _ms(_ratio(total_s, g["count"]))
        for q in (50, 95, 99):
            g[f"p{q}_ms"] = _ms(bounded_quantile(q / 100, counts, None, hi))
        g["max_ms"] = _ms(hi) if g["count"] else None
        out[key] = g
    return out


def json_view(snap: Snapshot, *, now: float, slot_s: float, threshold_s: float) -> dict[str, Any]:
    """The ``/api/production/metrics`` document (everything but ``health``)."""
    total = snap.total
    caches = {}
    for name, c in sorted(snap.caches.items()):
        caches[name] = {
            "hits": c.hits, "misses": c.misses, "evictions": c.evictions, "entries": c.entries,
            "memory_bytes": c.memory_bytes, "memory_estimated": c.memory_estimated,
            "hit_rate": _ratio(c.hits, c.hits + c.misses),
            "eviction_rate": _ratio(c.evictions, c.misses),
        }  # fmt: skip
    upstreams = {}
    for name, u in sorted(snap.upstreams.items()):
        calls = u.calls
        upstreams[name] = {
            "calls": calls, "success": u.success, "errors": u.errors, "timeouts": u.timeouts,
            "success_rate": _ratio(u.success, calls),
            "failure_rate": _ratio(u.errors + u.timeouts, calls),
            "avg_ms": _ms(_ratio(u.sum_s, calls)), "max_ms": _ms(u.max_s),
            "p95_ms": _ms(bounded_quantile(0.95, u.buckets, u.min_s, u.max_s)),
        }  # fmt: skip
    db: dict[str, Any] = {"queries": 0, "slow_queries": 0, "slow_threshold_s": threshold_s}
    systems = {}
    for system, q in sorted(snap.db.items()):
        db["queries"] += q.queries
        db["slow_queries"] += q.slow
        systems[system] = {
            "queries": q.queries, "slow_queries": q.slow, "avg_ms": _ms(_ratio(q.sum_s, q.queries)),
            "p95_ms": _ms(bounded_quantile(0.95, q.buckets, q.min_s, q.max_s, DB_BOUNDS)),
            "max_ms": _ms(q.max_s) if q.queries else None,
        }  # fmt: skip
    db["systems"] = systems
    db["recent_slow"] = list(snap.recent_slow)
    last = last_requests(snap)
    return {
        "uptime_seconds": round(max(0.0, now - snap.started_at), 3),
        "workers": snap.workers,
        "requests": {
            "total": total,
            "errors": snap.errors,
            "error_rate": _ratio(snap.errors, total),
            "in_flight": snap.in_flight,
            "avg_response_time_ms": _ms(_ratio(sum(s.sum_s for s in snap.series), total)),
            "p50_ms": last["p50_ms"],  # those of last_1000
            "p95_ms": last["p95_ms"],
            "p99_ms": last["p99_ms"],
            "overflowed": snap.overflow,
        },
        "last_1000": last,
        "routes": _routes(snap),
        "errors": {
            "total": sum(snap.exceptions.values()),
            "by_type": dict(sorted(snap.exceptions.items(), key=lambda kv: -kv[1])),
            "recent": list(snap.recent_errors),
        },
        "caches": caches,
        "upstreams": upstreams,
        "database": db,
        "window": window(snap, 60.0, now, slot_s),
    }

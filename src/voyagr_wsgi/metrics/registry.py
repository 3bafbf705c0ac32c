"""The metrics data model: one thread-safe :class:`Registry` per stack.

Everything the metrics area records lands here: HTTP requests (per ``method, route, status``
series with OpenTelemetry's latency buckets, :mod:`.series`), and, through the families of
:mod:`.families`, exceptions, named caches, upstream calls and database queries; plus time *slots*
(``slot_s`` wide, kept for ``retention_s``) from which windowed figures are computed. One
lock guards it all; the request path does a dict lookup and a few adds under it. A series'
request count is not kept: it is the sum of its duration buckets, added up when read. The
request path finds its slot without reading the wall clock when the caller passes its
``time.perf_counter()`` reading: each rotation maps the slot's wall-clock bounds onto
``perf_counter`` (so the wall clock is read once per slot, not per request; a wall-clock step
shows at the next slot boundary).

:meth:`Registry.snapshot` returns a typed :class:`~.snapshot.Snapshot` (named fields). The
registry knows nothing of its readers: :mod:`.reader` merges it across workers and computes
windows, :mod:`.views` / :mod:`.prometheus` / :mod:`.health` turn snapshots into documents.

Cardinality is bounded: at most ``max_routes`` distinct routes (more go to ``"__other__"``),
at most ``max_routes * 10`` series, 100 exception types, 100 caches and 100 upstreams.
"""

from __future__ import annotations

import functools
import itertools
import os
import secrets
import threading
import time
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING

from .families import (
    DB_BOUNDS,
    HTTP_BOUNDS,
    OVERFLOW,
    UNMATCHED,
    CacheInfo,
    Caches,
    Exceptions,
    OpenSlot,
    Queries,
    Upstreams,
)
from .series import RequestSeries
from .snapshot import Snapshot

if TYPE_CHECKING:
    from ..counters import Counters

__all__ = [
    "DB_BOUNDS",
    "HTTP_BOUNDS",
    "OVERFLOW",
    "UNMATCHED",
    "CacheInfo",
    "Registry",
]

# a series' list (the request path indexes it with literals): max_s, errors, sum_s,
# ttfb_sum_s, NB duration buckets (its count is the bucket sum, added up by snapshot());
# a slot's requests list (OpenSlot.requests) has the same shape with max_s in place of
# ttfb_sum_s. No minimum is kept per request (a compare the request path would pay): the
# readers keep a percentile in the lowest occupied bucket at or above what was seen
_S_HIST = 4
_FIRST = HTTP_BOUNDS[0]
_wall = time.time  # the default ``now``: slots can then be found from perf_counter readings

_registries: weakref.WeakSet[Registry] = weakref.WeakSet()
_fork_hook = False


def _after_fork() -> None:
    for registry in list(_registries):
        registry._forget()


class Registry:
    """All figures of one process; thread-safe. Pass ``now`` to drive slot time in tests."""

    def __init__(
        self,
        *,
        max_routes: int = 200,
        slow_query_threshold_s: float = 1.0,
        state_dir: str | None = None,
        slot_s: float = 5.0,  # seconds per window slot
        retention_s: float = 900.0,  # seconds of slots kept
        ring_size: int = 1000,
        recent: int = 50,  # recent errors / slow queries kept
        now: Callable[[], float] = time.time,  # wall clock: slots are compared across pids
    ) -> None:
        global _fork_hook
        self.max_routes = max_routes
        self.slow_query_threshold_s = slow_query_threshold_s
        self.state_dir = state_dir
        self.slot_s = slot_s
        self.retention_s = retention_s
        self.ring_size = ring_size
        self.recent = recent
        self.now = now
        self.pollers: dict[str, Callable[[], CacheInfo]] = {}
        #: the stack's decision counters (set by the metrics area), kept in the snapshot
        self.counters: Counters | None = None
        self.shared = False  # set by the snapshot writer: readers merge the worker files
        # requests started: one counter for the registry's life (a layer built before a fork
        # keeps calling the same ``started``); a forked child counts from its value at the fork
        self._started = itertools.count()
        # the layer calls this per request (partial(next, ...): a vectorcall, no method wrapper)
        self.started = functools.partial(next, self._started)
        self._forget()
        _registries.add(self)
        if not _fork_hook:
            _fork_hook = True
            os.register_at_fork(after_in_child=_after_fork)

    def _forget(self) -> None:
        """Fresh state (also run in a forked child: the parent's figures stay the parent's)."""
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self.write_lock = threading.Lock()  # serialises snapshot file writes
        self._poll_lock = threading.Lock()
        self.claimed = ""  # instance that last claimed <pid>.json (see multiprocess)
        self.pid = os.getpid()
        self.instance = secrets.token_hex(8)
        self.started_at = self.now()
        self.shared = False
        self._started_base = self._started_count()
        self._http = RequestSeries(self.max_routes)
        self._index = self._http.index  # the request path's three dict subscripts
        self._find = self._http.find
        self._ring: deque[float] = deque(maxlen=self.ring_size)
        self._ring_append = self._ring.append
        self._exceptions = Exceptions(self.recent)
        self._caches = Caches()
        self._upstreams = Upstreams()
        self._db = Queries(self.recent)
        self._slots: dict[int, OpenSlot] = {}
        self._sid = -1
        self._slot_start = self._slot_end = 0.0
        self._perf_start = self._perf_end = 0.0  # the current slot on perf_counter (or empty)
        self._slot = OpenSlot()
        self._wreq: list[float] = []

    # -- slots ---------------------------------------------------------------------------
    def _rotate(self, sid: int) -> None:
        """Switch the current slot (caller holds the lock)."""
        slot = self._slots.get(sid)
        if slot is None:
            slot = self._slots[sid] = OpenSlot()
            oldest = sid - int(self.retention_s / self.slot_s) - 1
            for old in [k for k in self._slots if k < oldest]:
                del self._slots[old]
        self._sid = sid
        self._slot = slot
        self._wreq = slot.requests
        self._slot_start = sid * self.slot_s
        self._slot_end = self._slot_start + self.slot_s
        if self.now is _wall:  # the same slot on perf_counter, for observe_request(end=)
            offset = perf_counter() - _wall()
            self._perf_start = self._slot_start + offset
            self._perf_end = self._slot_end + offset

    def _current(self) -> OpenSlot:
        sid = int(self.now() // self.slot_s)
        if sid != self._sid:
            self._rotate(sid)
        return self._slot

    # -- HTTP (hot path) -------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Requests started and not yet finished (``started`` is a lock-free counter)."""
        with self._lock:
            return self._started_count() - self._started_base - self._total()

    def _started_count(self) -> int:
        return int(repr(self._started)[6:-1])  # itertools.count's repr: "count(N)"

    @property
    def total(self) -> int:
        """Requests finished (the sum of every series)."""
        with self._lock:
            return self._total()

    def _total(self) -> int:
        return self._http.total()

    def observe_request(
        self,
        method: str,
        route: str,
        status: int,
        duration_s: float,
        ttfb_s: float,
        error: bool,
        end: float | None = None,  # time.perf_counter() at the end of the request, if known
    ) -> None:
        """Count one finished request (and end its in-flight span).

        ``end`` saves the wall-clock read that finds the time slot; without it (or with an
        injected ``now``) the slot comes from ``now()``, as for every other figure.
        """
        # the bucket's index in a series / slot list; most requests need no bisect
        i = _S_HIST if duration_s <= _FIRST else _S_HIST + bisect_left(HTTP_BOUNDS, duration_s)
        self._acquire()  # explicit acquire/release: cheaper than ``with`` on this path
        try:
            try:
                s = self._index[route][status][method]
            except KeyError:
                s = self._find(method, route, status)
            s[2] += duration_s
            s[3] += ttfb_s
            s[i] += 1
            if duration_s > s[0]:
                s[0] = duration_s
            self._ring_append(duration_s)
            if end is None or not self._perf_start <= end < self._perf_end:
                t = self.now()  # no perf_counter reading, or outside the slot: the wall clock
                if not self._slot_start <= t < self._slot_end:
                    self._rotate(int(t // self.slot_s))
            w = self._wreq
            w[2] += duration_s
            if duration_s > w[3]:
                w[3] = duration_s
            w[i] += 1  # _W_HIST == _S_HIST
            if error:
                s[1] += 1
                w[1] += 1
        finally:
            self._release()

    def record_exception(self, exc: BaseException, route: str) -> None:
        entry = Exceptions.entry(exc, route)  # the traceback is read outside the lock
        with self._lock:
            self._exceptions.record(entry, self._http.max_series)

    # -- caches ------------------------------------------------------------------------------
    def cache_event(self, name: str, hits: int = 0, misses: int = 0, evictions: int = 0) -> None:
        with self._lock:
            self._caches.event(name, hits, misses, evictions, self._current())

    def cache_size(
        self, name: str, entries: int, memory_bytes: int | None = None, estimated: bool = False
    ) -> None:
        """Cache gauges; ``estimated``: ``memory_bytes`` is an estimate, labelled so."""
        with self._lock:
            self._caches.size(name, entries, memory_bytes, estimated)

    def add_cache_poller(self, name: str, poll: Callable[[], CacheInfo]) -> None:
        """``poll()`` returns cumulative (hits, misses, evictions, entries, bytes|None), and
        optionally True when the bytes are an estimate."""
        self.pollers[name] = poll

    def poll_caches(self) -> None:
        """Fold the pollers' cumulative counters in as deltas (one poller run at a time)."""
        with self._poll_lock:
            for name, poll in list(self.pollers.items()):
                info = poll()
                hits, misses, evictions, entries, nbytes = info[:5]
                if hits is not None and misses is not None:
                    self.cache_event(name, *self._caches.delta(name, hits, misses, evictions))
                self.cache_size(name, entries, nbytes, len(info) > 5 and bool(info[5]))

    # -- upstreams and queries --------------------------------------------------------------
    def upstream_call(self, name: str, outcome: str, duration_s: float) -> None:
        """``outcome``: ``success``, ``error`` or ``timeout``."""
        with self._lock:
            self._upstreams.call(name, outcome, duration_s, self._current())

    def query(self, statement: str, duration_s: float, system: str = "sqlite") -> bool:
        """Count one statement; returns True (and keeps it) when it was slow."""
        slow = duration_s >= self.slow_query_threshold_s
        with self._lock:
            self._db.query(system, statement, duration_s, slow, self._current())
        return slow

    # -- reading -------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """This process's figures, named (see :mod:`.snapshot`)."""
        self.poll_caches()
        with self._lock:
            self._current()
            series = self._http.figures()
            total = sum(s.requests for s in series)
            return Snapshot(
                pid=self.pid,
                instance=self.instance,
                started_at=self.started_at,
                written_at=self.now(),
                in_flight=self._started_count() - self._started_base - total,
                total=total,
                errors=sum(s.errors for s in series),
                overflow=self._http.overflow,
                series=series,
                ring=tuple(round(x, 6) for x in self._ring),
                exceptions=dict(self._exceptions.by_type),
                exc_routes=self._exceptions.figures(),
                recent_errors=tuple(self._exceptions.recent),
                caches=self._caches.figures(),
                upstreams=self._upstreams.figures(),
                db=self._db.figures(),
                recent_slow=tuple(self._db.recent),
                slots={k: v.figures() for k, v in self._slots.items()},
                counts={} if self.counters is None else self.counters.figures(),
            )

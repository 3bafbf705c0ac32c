"""Decision counters the layers keep: rate-limit outcomes per policy, rejections per layer.

A low module (it imports nothing of the package) so that the layers may count without
knowing the metrics area. A layer takes ``counters=`` at construction; without it, it counts
into an object of its own (``layer.counters``). A composed stack hands every layer the same
:class:`Counters` (``context.counters``) and the metrics area puts its figures into the
per-worker snapshot, so ``GET /api/production/prometheus`` serves them merged across workers::

    voyagr_ratelimit_decisions_total{policy, outcome="allowed|denied|error"}
    voyagr_rejections_total{layer, reason}

Cost on the request path: an allowed rate-limit decision ticks an ``itertools.count`` (a C
call, no lock, no dict; its value is read from the count's ``repr``, which does not advance
it). Denials, store errors and rejections are 4xx/5xx answers, off the hot path: a dict
increment under a lock.

``layer`` is one of ``host_check``, ``cross_origin``, ``https_redirect``, ``ratelimit``,
``admin``; ``reason`` is a short fixed slug per layer (never a request value), so the label
sets stay small. With ``failure="local"`` a store error counts as ``error`` and the
per-process store's decision counts as ``allowed`` or ``denied`` too.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import weakref
from collections.abc import Callable

__all__ = ["Counters", "count_value"]

_SEP = "\x1f"
_alive: weakref.WeakSet[Counters] = weakref.WeakSet()
_fork_hook = False


def count_value(counter: itertools.count[int]) -> int:
    """The next value of an ``itertools.count`` without advancing it: ``count(5)`` -> 5."""
    return int(repr(counter)[6:-1])


def _after_fork() -> None:
    for counters in list(_alive):
        counters.reset()


class Counters:
    """Rate-limit decisions and rejections of one stack in this process; thread-safe."""

    def __init__(self) -> None:
        global _fork_hook
        self._lock = threading.Lock()
        self.reset()
        _alive.add(self)
        if not _fork_hook:
            _fork_hook = True
            os.register_at_fork(after_in_child=_after_fork)

    def reset(self) -> None:
        """Zero everything (a forked worker starts from zero: the parent's stay the parent's)."""
        self._lock = threading.Lock()
        # the layers hold a tick on each count, and a count cannot be set back: keep the
        # objects and remember where they stood
        self._allowed: dict[str, itertools.count[int]] = getattr(self, "_allowed", {})
        self._base = {policy: count_value(c) for policy, c in self._allowed.items()}
        self._counts: dict[str, int] = {}

    def allowed_counter(self, policy: str) -> Callable[[], int]:
        """The tick a rate-limit layer calls for each request ``policy`` allows."""
        with self._lock:
            counter = self._allowed.get(policy)
            if counter is None:
                counter = self._allowed[policy] = itertools.count()
                self._base[policy] = 0
            return functools.partial(next, counter)  # a vectorcall: cheaper than __next__

    def decision(self, policy: str, outcome: str) -> None:
        """Count a ``denied`` or ``error`` rate-limit decision."""
        self._add(f"ratelimit{_SEP}{policy}{_SEP}{outcome}")

    def rejection(self, layer: str, reason: str) -> None:
        """Count a request a layer answered itself with a refusal."""
        self._add(f"rejection{_SEP}{layer}{_SEP}{reason}")

    def _add(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def figures(self) -> dict[str, int]:
        """Every count, keyed ``"ratelimit\\x1f<policy>\\x1f<outcome>"`` or
        ``"rejection\\x1f<layer>\\x1f<reason>"`` (the form the metrics snapshot keeps)."""
        with self._lock:
            out = dict(self._counts)
            for policy, counter in self._allowed.items():
                out[f"ratelimit{_SEP}{policy}{_SEP}allowed"] = count_value(
                    counter
                ) - self._base.get(policy, 0)
        return out

    def get(self, kind: str, first: str, second: str) -> int:
        """One count: ``get("ratelimit", "default", "denied")``."""
        return self.figures().get(f"{kind}{_SEP}{first}{_SEP}{second}", 0)

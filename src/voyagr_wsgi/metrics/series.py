"""The HTTP request family: one series per ``(method, route, status)``, capped.

The registry's request path adds to a series' list under its lock (the literals it indexes
are named in :mod:`.registry`); this class finds or creates the series and reads them out as
:class:`~.snapshot.Series`. At most ``max_routes`` distinct routes (more count in
``"__other__"``) and ``max_routes * 10`` series (more count in ``("_OTHER", "__other__",
0)``); every request folded by a cap counts in ``overflow``.
"""

from __future__ import annotations

from .families import NB, OVERFLOW
from .snapshot import Series

__all__ = ["RequestSeries"]

_HIST = 4  # a series' list: max_s, errors, sum_s, ttfb_sum_s, NB buckets


class RequestSeries:
    """The series of one registry (the caller holds the registry's lock)."""

    def __init__(self, max_routes: int) -> None:
        self.max_routes = max_routes
        self.max_series = max_routes * 10
        self.overflow = 0
        self.by_key: dict[tuple[str, str, int], list[float]] = {}
        #: route -> status -> method -> its series (the same lists as ``by_key``): the request
        #: path finds a series by three dict subscripts, no key tuple; a request counted in an
        #: overflow series is never indexed (each one counts in ``overflow``)
        self.index: dict[str, dict[int, dict[str, list[float]]]] = {}
        self.routes: set[str] = set()

    def find(self, method: str, route: str, status: int) -> list[float]:
        """The series of a request the index does not know."""
        key = (method, route, status)
        s = self.by_key.get(key)
        if s is None:
            s = self._new(method, route, status)
        if self.by_key.get(key) is s:  # its own series, not an overflow one: index it
            self.index.setdefault(route, {}).setdefault(status, {})[method] = s
        return s

    def _new(self, method: str, route: str, status: int) -> list[float]:
        if route not in self.routes:
            if len(self.routes) < self.max_routes:
                self.routes.add(route)
            else:
                route = OVERFLOW
                self.overflow += 1
        key = (method, route, status)
        s = self.by_key.get(key)
        if s is None:
            if len(self.by_key) >= self.max_series:
                self.overflow += 1
                key = ("_OTHER", OVERFLOW, 0)
                s = self.by_key.get(key)
            if s is None:
                s = [0.0, 0, 0.0, 0.0] + [0] * NB
                self.by_key[key] = s
        return s

    def total(self) -> int:
        """Requests finished: the sum of every series' buckets."""
        return int(sum(sum(s[_HIST:]) for s in self.by_key.values()))

    def figures(self) -> tuple[Series, ...]:
        return tuple(
            Series(
                *key, int(sum(v[_HIST:])), int(v[1]), v[2], v[3], tuple(map(int, v[_HIST:])), v[0]
            )
            for key, v in self.by_key.items()
        )

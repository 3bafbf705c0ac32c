"""Trackers for what the app calls: upstream services, caches, database queries.

Inside a request they record into the registry of the stack serving it (the Metrics layer
makes it current: :mod:`.context`); outside a request pass ``registry=`` (``stack.metrics``)
or wrap the code in ``with use_registry(stack.metrics):``. The registry is looked up at call
time, so decorating at import is fine. With no registry a tracker records nothing and warns
:class:`~.context.MetricsWarning`; the cache pollers raise ``ConfigurationError``.

Upstreams (GraphHopper, Valhalla, OSRM are just names)::

    with track_upstream("osrm") as call:       # success / error / timeout + latency
        resp = session.get(url, timeout=5)
        if resp.status_code >= 500:
            call.fail()                           # an answer that is still a failure

    @track_upstream("valhalla")
    def isochrone(...): ...

An exception marks the call ``timeout`` when it is a :class:`TimeoutError` (which includes
``socket.timeout``) or its class name contains ``Timeout`` (``requests.Timeout``,
``httpx.TimeoutException``, ``urllib3.ReadTimeoutError``), otherwise ``error``; it is re-raised.

Caches::

    stats = cache_stats("geocode")                # manual: stats.hit(), .miss(), .evict()
    lru_cache_stats("routes", plan_route)         # functools.lru_cache: polled cache_info()
    cache = cachetools_stats("tiles", TTLCache(maxsize=1000, ttl=60))

Cache memory: ``memory_bytes`` is exact when the app says it (``lru_cache_stats(...,
memory_bytes=fn)``, a ``cachetools`` cache built with ``getsizeof=``, ``stats.size()``);
otherwise the pollers report an estimate, entries x a sampled entry's size, computed when
the registry polls, never per call (:mod:`.sizing`), and marked ``memory_estimated: true``
in the JSON and ``estimate="true"`` on ``voyagr_cache_memory_bytes``.

Slow queries (``SLOW_QUERY_THRESHOLD_SECONDS``, default 1 s)::

    db = connect("app.db")                        # sqlite3.connect with every statement timed
    with track_query("SELECT ... WHERE id = 42"):  # any other driver
        cursor.execute(...)

Slow statements are kept with their literals replaced by ``?`` (:func:`normalize_sql`), so
no user data lands in the metrics, in a ring of the 50 most recent.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from .context import CURRENT, MetricsWarning
from .registry import CacheInfo, Registry
from .sizing import Estimator, lru_entry_size, mapping_entry_size

__all__ = [
    "CacheStats",
    "TimedConnection",
    "cache_stats",
    "cachetools_stats",
    "connect",
    "lru_cache_stats",
    "normalize_sql",
    "track_query",
    "track_upstream",
]

P = ParamSpec("P")
R = TypeVar("R")


def _reg(registry: Registry | None, what: str) -> Registry | None:
    """``registry``, else the current request's; None (and a warning) when there is none."""
    if registry is not None:
        return registry
    current = CURRENT.get()
    if current is None:
        warnings.warn(
            f"{what}: not recorded: no registry= and no current request "
            "(pass registry=stack.metrics or use `with use_registry(...)`)",
            MetricsWarning,
            stacklevel=3,
        )
    return current


def _poll_target(registry: Registry | None, what: str) -> Registry:
    """The registry a cache poller attaches to (it cannot wait for a request)."""
    registry = registry if registry is not None else CURRENT.get()
    if registry is None:
        from ..errors import ConfigurationError

        raise ConfigurationError(
            f"{what}: no registry to attach to: pass registry=stack.metrics "
            "(outside a request there is no current registry)"
        )
    return registry


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or any(
        "Timeout" in cls.__name__ for cls in type(exc).__mro__
    )


class track_upstream:  # lower case: used like a function (with / decorator)
    """Time one call to an upstream; a context manager and a decorator."""

    def __init__(self, name: str, *, registry: Registry | None = None) -> None:
        self.name = name
        self.registry = registry
        self._t0 = 0.0
        self._failed = False

    def fail(self, timeout: bool = False) -> None:
        """Mark the current call failed although nothing was raised (e.g. HTTP 503)."""
        self._failed = True
        self._timeout = timeout

    def __enter__(self) -> track_upstream:
        self._failed = False
        self._timeout = False
        self._t0 = perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration = perf_counter() - self._t0
        if exc is not None:
            outcome = "timeout" if _is_timeout(exc) else "error"
        elif self._failed:
            outcome = "timeout" if self._timeout else "error"
        else:
            outcome = "success"
        registry = _reg(self.registry, f"track_upstream({self.name!r})")
        if registry is not None:
            registry.upstream_call(self.name, outcome, duration)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with track_upstream(self.name, registry=self.registry):
                return fn(*args, **kwargs)

        return wrapper


class CacheStats:
    """Manual cache counters for a named cache."""

    def __init__(self, name: str, registry: Registry | None = None) -> None:
        self.name = name
        self.registry = registry

    def _target(self) -> Registry | None:
        return _reg(self.registry, f"cache_stats({self.name!r})")

    def hit(self, n: int = 1) -> None:
        registry = self._target()
        if registry is not None:
            registry.cache_event(self.name, hits=n)

    def miss(self, n: int = 1) -> None:
        registry = self._target()
        if registry is not None:
            registry.cache_event(self.name, misses=n)

    def evict(self, n: int = 1) -> None:
        registry = self._target()
        if registry is not None:
            registry.cache_event(self.name, evictions=n)

    def size(self, entries: int, memory_bytes: int | None = None) -> None:
        registry = self._target()
        if registry is not None:
            registry.cache_size(self.name, entries, memory_bytes)


def cache_stats(name: str, *, registry: Registry | None = None) -> CacheStats:
    return CacheStats(name, registry)


def lru_cache_stats(
    name: str,
    fn: Any,
    *,
    registry: Registry | None = None,
    memory_bytes: Callable[[], int] | None = None,
) -> Any:
    """Report a ``functools.lru_cache`` function's ``cache_info()`` (polled on snapshot).

    Evictions are derived: with a bounded cache every miss inserts, so evictions =
    misses - current size (after a ``cache_clear`` the counters restart). Memory is
    ``memory_bytes()`` when given, else an estimate labelled as such (:mod:`.sizing`).
    """
    if not hasattr(fn, "cache_info"):
        from ..errors import ConfigurationError

        raise ConfigurationError(f"lru_cache_stats({name!r}): {fn!r} has no cache_info()")
    target = _poll_target(registry, f"lru_cache_stats({name!r})")

    estimate = Estimator(functools.partial(lru_entry_size, fn))

    def poll() -> CacheInfo:
        info = fn.cache_info()
        evictions = max(0, info.misses - info.currsize) if info.maxsize else 0
        if memory_bytes is not None:
            return info.hits, info.misses, evictions, info.currsize, memory_bytes()
        return info.hits, info.misses, evictions, info.currsize, estimate(info.currsize), True

    target.add_cache_poller(name, poll)
    return fn


def cachetools_stats(name: str, cache: Any, *, registry: Registry | None = None) -> Any:
    """Count hits, misses and size evictions of a ``cachetools`` cache (in place).

    The instance's class is swapped for a subclass whose ``__getitem__`` / ``get`` /
    ``popitem`` report to the registry; entries and memory are polled: ``currsize`` when
    the cache was built with ``getsizeof=``, else an estimate labelled as such
    (:mod:`.sizing`).
    """
    target = _poll_target(registry, f"cachetools_stats({name!r})")
    base = type(cache)
    stats = CacheStats(name, target)

    class Tracked(base):  # type: ignore[valid-type, misc]
        def __getitem__(self, key: Any) -> Any:
            try:
                value = base.__getitem__(self, key)
            except KeyError:
                stats.miss()
                raise
            stats.hit()
            return value

        def get(self, key: Any, default: Any = None) -> Any:
            if key in self:
                return self[key]
            stats.miss()
            return default

        def popitem(self) -> Any:
            item = base.popitem(self)
            stats.evict()
            return item

    Tracked.__name__ = Tracked.__qualname__ = f"Tracked{base.__name__}"
    cache.__class__ = Tracked
    sized = getattr(cache, "getsizeof", None) is not None and "getsizeof" in vars(cache)

    estimate = Estimator(functools.partial(mapping_entry_size, cache))

    def poll() -> CacheInfo:  # counters come from the events above
        if sized:
            return None, None, None, len(cache), int(cache.currsize)
        return None, None, None, len(cache), estimate(len(cache)), True

    target.add_cache_poller(name, poll)
    return cache


_LITERALS = re.compile(
    r"""'(?:[^']|'')*'|"(?:[^"]|"")*"(?=\s*(?:=|<|>|,|\)|$))|\b[xX]'[0-9a-fA-F]*'"""
    r"""|\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b|\b0[xX][0-9a-fA-F]+\b"""
)
_IN_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SPACES = re.compile(r"\s+")


def normalize_sql(statement: str, limit: int = 500) -> str:
    """The statement with string/number/blob literals as ``?``, lists collapsed, truncated."""
    text = _LITERALS.sub("?", statement)
    text = _IN_LIST.sub("(?)", text)
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def track_query(
    statement: str, *, system: str = "sqlite", registry: Registry | None = None
) -> Iterator[None]:
    """Time one database statement; slow ones are kept (normalized)."""
    t0 = perf_counter()
    try:
        yield
    finally:
        duration = perf_counter() - t0
        reg = _reg(registry, "track_query")
        if reg is None:
            pass
        elif duration >= reg.slow_query_threshold_s:
            reg.query(normalize_sql(statement), duration, system)
        else:
            reg.query("", duration, system)


class _TimedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> _TimedCursor:
        with track_query(sql, registry=getattr(self.connection, "registry", None)):
            super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, seq: Any, /) -> _TimedCursor:
        with track_query(sql, registry=getattr(self.connection, "registry", None)):
            super().executemany(sql, seq)
        return self

    def executescript(self, script: str, /) -> _TimedCursor:
        with track_query(script, registry=getattr(self.connection, "registry", None)):
            super().executescript(script)
        return self


class TimedConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` whose every statement is timed (see :func:`connect`)."""

    registry: Registry | None = None

    def cursor(self, factory: Any = _TimedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)  # type: ignore[no-any-return]

    def executemany(self, sql: str, seq: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, seq)  # type: ignore[no-any-return]

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        return self.cursor().executescript(script)  # type: ignore[no-any-return]


def connect(database: Any, *, registry: Registry | None = None, **kwargs: Any) -> Any:
    """``sqlite3.connect`` returning a :class:`TimedConnection` (``factory=`` not allowed)."""
    conn = sqlite3.connect(database, factory=TimedConnection, **kwargs)
    conn.registry = registry
    return conn

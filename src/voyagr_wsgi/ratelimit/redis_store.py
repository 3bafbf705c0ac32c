"""Redis rate-limit store: GCRA in one Lua script, shared by every worker and machine.

When: several gunicorn workers or several instances must share one budget per client.
``RATE_LIMIT_STORAGE=redis://host:6379/0`` selects it in :meth:`Settings.from_env`; in code::

    RateLimit("100/60s", store=RedisStore("redis://127.0.0.1:6379/0"))

How: one round trip per decision (``EVALSHA``, falling back to
loading the script on ``NOSCRIPT``, e.g. after a Redis restart: redis-py's ``Script`` does
this); the script reads the clock with ``TIME`` (allowed before a write because Redis 5 and
later replicate scripts by their effects) so app hosts' clocks never matter; one key per
client (``vy:rl:{<client>}``) holding the TAT in integer microseconds with a ``PEXPIRE`` of
``TAT - now``, so Redis memory follows the number of *active* clients; denied requests write
nothing. Stacked rates use the same script with one key per policy (``vy:rl:{<client>}:<name>``,
one hash slot), all allowed and written or none.

Failure: a connection pool with short socket timeouts (100 ms) and no client-side retries.
A failed call raises :class:`~voyagr_wsgi.errors.StorageError`; the layer applies its policy
(``RATE_LIMIT_REDIS_FAILURE=open``: let the request through; ``closed``: 503; ``local``: a
per-process memory store decides). After a
failure the store does not try Redis again for ``backoff_s`` (1 s), so an outage costs no
timeout per request. Failures are counted (``failures``), logged at most once per
``log_every_s`` (60 s) and reported by :func:`store_health` as ``ratelimit:store``.
Nothing connects at construction: the pool opens on the first request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NoReturn

from .._extras import missing
from ..errors import StorageError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError as exc:  # the optional extra
    raise missing("RedisStore (RATE_LIMIT_STORAGE=redis://...)", "redis") from exc
from ..health import Check
from ._lua import GCRA_LUA as LUA

__all__ = ["LUA", "RedisStore", "store_health"]

log = logging.getLogger("voyagr_wsgi.ratelimit")


class RedisStore:
    """GCRA on Redis; same Protocol as :class:`~.memory.MemoryStore`."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "vy:rl:",
        socket_timeout: float = 0.1,  # seconds, per command and per connect
        max_connections: int = 64,
        backoff_s: float = 1.0,  # seconds without trying after a failure
        log_every_s: float = 60.0,
        now: Callable[[], float] = time.monotonic,
        client: Any = None,  # a redis.Redis, for custom set-ups (sentinel, cluster)
    ) -> None:
        self.url = url
        self.prefix = prefix
        self._timeout = socket_timeout
        self._max_connections = max_connections
        self._backoff = backoff_s
        self._log_every = log_every_s
        self._now = now
        self._client = client
        self._script: Any = None
        self._pool: Any = None  # ours to disconnect on close() (a given client is not)
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._last_log = float("-inf")
        self._unlogged = 0
        self.failures = 0
        self.available = True
        self.last_error = ""

    def __repr__(self) -> str:
        return f"RedisStore({self.url.split('@')[-1]!r})"  # never print a password

    def _connect(self) -> Any:
        with self._lock:
            if self._script is None:
                if self._client is None:
                    pool = redis.ConnectionPool.from_url(
                        self.url,
                        socket_timeout=self._timeout,
                        socket_connect_timeout=self._timeout,
                        max_connections=self._max_connections,
                        retry=Retry(NoBackoff(), 0),
                    )
                    self._client = redis.Redis(connection_pool=pool)
                    self._pool = pool
                self._script = self._client.register_script(LUA)
            return self._script

    def update(self, key: str, interval: float, tolerance: float, cost: int) -> tuple[bool, float]:
        allowed, (offset,) = self.update_many(key, [("", interval, tolerance)], cost)
        return allowed, offset

    def update_many(
        self, key: str, items: Sequence[tuple[str, float, float]], cost: int
    ) -> tuple[bool, list[float]]:
        """Several policies of one client in one script (keys ``{client}<suffix>``, one hash
        slot): all allowed and written, or none. :meth:`update` is the one-policy case."""
        script = self._script or self._connect()
        args: list[int] = [cost]
        for _, interval, tolerance in items:
            args += [max(1, round(interval * 1e6)), round(tolerance * 1e6)]
        keys = [f"{self.prefix}{{{key}}}{suffix}" for suffix, _, _ in items]
        reply = self._run(script, keys, args)
        return bool(reply[0]), [int(v) / 1e6 for v in reply[1:]]

    def _run(self, script: Any, keys: list[str], args: list[int]) -> Any:
        """One script call with the back-off, the failure accounting and the recovery log."""
        if self._down_until and self._now() < self._down_until:
            self._failed(None)
        try:
            reply = script(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            self._failed(exc)
        if not self.available:
            self.available = True
            self._down_until = 0.0
            log.warning("rate-limit store %r is reachable again", self)
        return reply

    def _failed(self, exc: BaseException | None) -> NoReturn:
        self.failures += 1
        self._unlogged += 1
        now = self._now()
        if exc is not None:
            self.available = False
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._down_until = now + self._backoff
        if now - self._last_log >= self._log_every:
            log.error(
                "rate-limit store %r unavailable (%d failed decisions since the last report): %s",
                self,
                self._unlogged,
                self.last_error,
            )
            self._last_log = now
            self._unlogged = 0
        raise StorageError(f"rate-limit store {self!r} unavailable: {self.last_error}") from exc

    def clear(self) -> None:
        self._connect()
        keys = list(self._client.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            self._client.delete(*keys)

    def close(self) -> None:
        """Close the pool's connections (it reopens on the next request)."""
        if self._pool is not None:
            self._pool.disconnect()
        elif self._client is not None:
            self._client.close()


def store_health(
    store: RedisStore, failure: Literal["open", "closed", "local"]
) -> Callable[[], Iterable[Check]]:
    """A health source: ``ratelimit:store`` warns while failing open or local, fails (and
    fails readiness) while closed."""

    def source() -> list[Check]:
        if store.available:
            return [
                Check(
                    "ratelimit:store",
                    "pass",
                    store.failures,
                    "failures",
                    component_type="datastore",
                )
            ]
        action = {
            "open": "requests pass unlimited",
            "closed": "requests get 503",
            "local": "each process limits on its own",
        }[failure]
        return [
            Check(
                "ratelimit:store",
                "fail" if failure == "closed" else "warn",
                store.failures,
                "failures",
                output=f"rate-limit store unreachable ({store.last_error}); {action}",
                component_type="datastore",
                readiness=failure == "closed",  # fail closed: this instance answers only 503
            )
        ]

    return source

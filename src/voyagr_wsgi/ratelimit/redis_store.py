"""Redis rate-limit store: GCRA in one Lua script, shared by every worker and machine, with
worker-local reservations so hot clients cost no round trip.

When: several gunicorn workers or several instances must share one budget per client.
``RATE_LIMIT_STORAGE=redis://host:6379/0`` selects it in :meth:`Settings.from_env`; in code::

    RateLimit("100/60s", store=RedisStore("redis://127.0.0.1:6379/0"))

The script: one round trip per call (``EVALSHA``, falling back to loading the script on
``NOSCRIPT``, e.g. after a Redis restart: redis-py's ``Script`` does this); it reads the clock
with ``TIME`` (allowed before a write because Redis 5 and later replicate scripts by their
effects) so app hosts' clocks never matter; one key per client (``vy:rl:{<client>}``) holding
the TAT in integer microseconds with a ``PEXPIRE`` of ``TAT - now``, so Redis memory follows
the number of *active* clients; denied requests write nothing. Stacked rates use the same
script with one key per policy (``vy:rl:{<client>}:<name>``, one hash slot), all allowed and
written or none.

Reservations (:mod:`.reservations`): a call may debit more than the request's cost. It grants
``g`` = the largest ``m <= want`` that every policy allows now (the same ``g`` on every key of a
stacked spec), at least the cost or nothing. The worker spends the other ``g - cost`` units
from memory (a dict lookup under a lock, no round trip) until they run out or the grant
expires, and answers a client it knows to be over its limit from memory until its retry time.

- A key seen for the first time reserves exactly its cost (one round trip per request, as a
  plain GCRA store); ``want`` then follows the rate this worker observes for the key times the
  lease, doubling at most per call, capped by ``batch`` (``RATE_LIMIT_REDIS_BATCH``; 0, the
  default, means ``burst // 16``; never above ``burst // 2``; 1 turns reservations off). A
  client at 1 request a minute stays exact; one at 1,000/s on a ``10^6/60s`` limit reserves
  up to 500 units per call with the default lease.
- **Never above the limit.** Units are debited on Redis before they are spent, and the debits
  follow GCRA exactly on Redis's clock: between two readings of Redis's clock ``t0 < t1``, at
  most ``burst + (t1 - t0) / T`` units are debited (GCRA's own bound), so at most that many
  requests are admitted, over all workers and machines. A grant lives
  ``lease = min(lease_s, tau / 10)`` seconds from the moment its call was sent
  (``RATE_LIMIT_REDIS_LEASE_SECONDS``, 0.5): a unit is spent at most ``lease`` after Redis
  debited it, so a window of ``w`` seconds measured
  where requests arrive admits at most ``burst + (w + lease) / T`` (exact GCRA:
  ``burst + w / T``; with ``lease <= tau / 10`` the shift is at most a tenth of the burst).
- **The bound on under-service.** Units held by workers are debited but not yet spent: at any
  moment at most ``cap`` per worker (per thread with threaded workers) and client, so over
  all machines a client is denied at most ``workers x cap`` requests early because of them.
  Unspent units are dropped when their grant expires and are not given back (a refund sent
  after the bucket had drained past them would hand them out twice): a dropped unit counts as
  spent and drains in ``T`` like any other. A grant that expires with units left has lived a
  whole lease, so a worker drops at most ``cap`` units of a client per lease: at most
  ``workers x cap`` per lease over the fleet, and little in a steady stream, whose grants
  are sized to what the worker spent in the previous lease.
- **Denials from memory.** After Redis denies, the worker denies the same client locally while
  the offset Redis answered, less the time since the call was sent, shows the request cannot
  fit (a TAT only grows, so Redis would deny it too); the 429's ``Retry-After`` comes from that
  offset. A ``clear()`` or a restarted, empty Redis is seen by a worker once its cached
  denials run out (at most the client's retry time).
- **Bounded.** At most ``max_keys`` (100,000) clients have local state in a worker; beyond
  that the oldest are dropped, with the units they held.
- **Truthful fields.** The offset handed to the layer is Redis's at the call, less the time
  elapsed since, less ``held x T``: ``RateLimit``'s ``r`` is what Redis had left plus the
  units this worker still holds, never above the burst. A peek (cost 0, ``explain``) always
  asks Redis and subtracts this worker's held units.

Failure: a connection pool with short socket timeouts (100 ms) and no client-side retries.
A failed call raises :class:`~voyagr_wsgi.errors.StorageError`; the layer applies its policy
(``RATE_LIMIT_REDIS_FAILURE=open``: let the request through; ``closed``: 503; ``local``: a
per-process memory store decides). Units already held and cached denials are still answered
from memory while Redis is down; everything else fails as described. After a failure the
store does not try Redis again for ``backoff_s`` (1 s), so an outage costs no timeout per
request. Failures are counted (``failures``), logged at most once per ``log_every_s`` (60 s)
and reported by :func:`store_health` as ``ratelimit:store``. ``calls`` counts the script
calls tried (the decisions that were not answered from memory).
Nothing connects at construction: the pool opens on the first request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NoReturn

from .._extras import missing
from ..errors import ConfigurationError, StorageError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError as exc:  # the optional extra
    raise missing("RedisStore (RATE_LIMIT_STORAGE=redis://...)", "redis") from exc
from ..health import Check
from ._lua import GCRA_LUA as LUA
from .reservations import Reservations

__all__ = ["LUA", "RedisStore", "store_health"]

log = logging.getLogger("voyagr_wsgi.ratelimit")


class RedisStore:
    """GCRA on Redis with worker-local reservations; same Protocol as
    :class:`~.memory.MemoryStore`. ``now`` (monotonic seconds) drives the back-off, the
    leases and the cached denials."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "vy:rl:",
        batch: int = 0,  # most units per call for one client; 0: burst // 16; 1: no reservations
        lease_s: float = 0.5,  # seconds a grant lives (at most tau / 10)
        max_keys: int = 100_000,  # clients with local state in this worker
        socket_timeout: float = 0.1,  # seconds, per command and per connect
        max_connections: int = 64,
        backoff_s: float = 1.0,  # seconds without trying after a failure
        log_every_s: float = 60.0,
        now: Callable[[], float] = time.monotonic,
        client: Any = None,  # a redis.Redis, for custom set-ups (sentinel, cluster)
    ) -> None:
        if not isinstance(batch, int) or batch < 0:
            raise ConfigurationError(f"RedisStore: batch={batch!r}; use an integer >= 0")
        if not 0.0 < lease_s <= 60.0:
            raise ConfigurationError(f"RedisStore: lease_s={lease_s!r}; use 0 < lease_s <= 60")
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError(f"RedisStore: max_keys={max_keys!r}; use an integer >= 1")
        self.url = url
        self.prefix = prefix
        self.local = Reservations(batch=batch, lease_s=lease_s, max_keys=max_keys)
        self._spend = self.local.spend
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
        self.calls = 0  # round trips to Redis (decisions minus those answered locally)
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
        now = self._now()
        if cost:
            local = self._spend(key, interval, tolerance, cost, now)
            if local is not None:
                return local
        allowed, offsets = self._reserve(key, [("", interval, tolerance)], cost, now)
        return allowed, offsets[0]

    def update_many(
        self, key: str, items: Sequence[tuple[str, float, float]], cost: int
    ) -> tuple[bool, list[float]]:
        """Several policies of one client in one script (keys ``{client}<suffix>``, one hash
        slot): all allowed and written, or none; one grant serves them all."""
        now = self._now()
        if cost:
            shape = tuple((interval, tolerance) for _, interval, tolerance in items)
            local = self.local.spend_many(key, shape, cost, now)
            if local is not None:
                return local
        return self._reserve(key, items, cost, now)

    def _reserve(
        self, key: str, items: Sequence[tuple[str, float, float]], cost: int, now: float
    ) -> tuple[bool, list[float]]:
        """One call: reserve what the key's rate asks for (at least ``cost``), or peek."""
        script = self._script or self._connect()
        shape = tuple((interval, tolerance) for _, interval, tolerance in items)
        want = self.local.want(key, shape, cost, now) if cost else 0
        args: list[int] = [cost, want]
        for interval, tolerance in shape:
            args += [max(1, round(interval * 1e6)), round(tolerance * 1e6)]
        keys = [f"{self.prefix}{{{key}}}{suffix}" for suffix, _, _ in items]
        reply = self._run(script, keys, args)
        allowed, granted = bool(reply[0]), int(reply[1])
        offsets = [int(v) / 1e6 for v in reply[2:]]
        if not cost:
            return allowed, self.local.held(key, shape, offsets, self._now())
        return allowed, self.local.record(key, shape, cost, now, allowed, granted, offsets)

    def _run(self, script: Any, keys: list[str], args: list[int]) -> Any:
        """One script call with the back-off, the failure accounting and the recovery log."""
        if self._down_until and self._now() < self._down_until:
            self._failed(None)
        self.calls += 1
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
        """Forget every key in Redis under the prefix, and this worker's local state (other
        workers' cached denials last until their retry time)."""
        self.local.clear()
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

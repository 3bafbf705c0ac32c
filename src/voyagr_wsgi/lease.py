"""``RedisLease``: one holder per singleton service across machines, with a fencing epoch.

The per-machine ``flock`` (:mod:`voyagr_wsgi.services`) picks one process per machine; with
``SERVICES_LEASE_URL=redis://...`` that process must also hold a Redis lease before it runs a
singleton service, so one machine in the fleet runs the backup scheduler of a backup set and
one runs alert evaluation. One lease per name (``backups:<set>``, ``alerts``)::

    client = redis_client("redis://redis.internal:6379/0")
    lease = RedisLease(client, "backups:main", ttl_s=15)
    epoch = lease.try_acquire()          # None while another process holds it
    if epoch is not None:
        ...                              # run the guarded work while lease.held
    lease.release()                      # clean shutdown: hand over at once

How it works (the pattern of Redis's own lock page, redis-py's ``Lock``, RedBeat and
client-go's leader election):

- **acquire**: ``SET voyagr:lease:<name> <token> NX PX <ttl>``; on success the same script
  ``INCR``\\ s ``voyagr:lease:<name>:epoch`` (the *fencing epoch*, returned with the
  acquisition). The token is ``host:pid:random``, new for every acquisition, so health shows
  who holds the lease. A failed attempt returns the holder and the current epoch.
- **renew**: a named thread (``voyagr-lease-<name>``) runs a token-checked script every
  ``renew_s`` (default ``ttl_s / 3``): ``PEXPIRE`` only if the value is still our token.
- **deadline**: the lease is :attr:`~RedisLease.held` only until ``deadline_s`` (default
  ``2/3 ttl_s``) after the *start* of the last good renewal, on the monotonic clock. A
  renewal that returns after that deadline counts as failed, whatever Redis answered: its
  ``OK`` may describe a key that another process has since taken. The deadline is shorter
  than the TTL, so the holder stops before any standby can take the key, with ``ttl_s -
  deadline_s`` left for clock-rate drift and the time to stop.
- **release**: a token-checked ``DEL``, so a stale holder never deletes a successor's key.
- **epoch floor**: every contender remembers the highest epoch it has seen and sends it with
  each attempt, so an acquisition after Redis lost its data (a restart without persistence,
  a failover) still gets a larger epoch than any holder seen before.

**Slot claims** (:meth:`RedisLease.claim`): ``SET voyagr:claim:<name>:<slot> <epoch> NX PX``.
Work that must run once per schedule slot (a scheduled backup) asks for its slot first; a
second holder (after a failover, or two holders while Redis fails over) is refused the slot.

What this does not guarantee: Redis replicates asynchronously, so a failover can lose the
lease key (and the latest claims): two holders may then run for up to one TTL. Slot claims
and unique backup ids make that harmless for scheduled backups; alert notifications are
deduplicated separately (:mod:`voyagr_wsgi.alerts.fleet`). The library does not hand the
epoch to storage systems that could reject a stale writer (real fencing); nothing it writes
needs it, since every backup object has a new name.

``redis`` is the optional ``redis`` extra, imported when a lease is built.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ._extras import missing
from .errors import ConfigurationError

__all__ = ["RedisLease", "lease_factory", "redis_client", "redis_errors"]

log = logging.getLogger("voyagr_wsgi.lease")

_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local epoch = redis.call('INCR', KEYS[2])
  local floor = tonumber(ARGV[3])
  if epoch < floor then
    redis.call('SET', KEYS[2], floor)
    epoch = floor
  end
  return {1, epoch, ARGV[1]}
end
return {0, tonumber(redis.call('GET', KEYS[2]) or '0'), redis.call('GET', KEYS[1]) or ''}
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_GONE = "the key is no longer ours"
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def redis_client(url: str, *, what: str = "SERVICES_LEASE_URL", timeout_s: float = 1.0) -> Any:
    """A ``redis.Redis`` for ``url``; a missing extra is a ConfigurationError naming it."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"{what}={url!r} is not a Redis URL; accepts redis://, rediss:// or unix://"
        )
    try:
        import redis
    except ImportError as exc:
        raise missing(f"{what}=redis://...", "redis") from exc
    return redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call raises when Redis is away (its own errors, sockets, timeouts)."""
    try:
        import redis
    except ImportError:
        return (OSError,)
    return (redis.RedisError, OSError)


def lease_factory(
    url: str, *, ttl_s: float = 15.0
) -> Callable[[str, Callable[[], None]], RedisLease]:
    """What ``compose`` hands the Supervisor for ``SERVICES_LEASE_URL``: one client (built
    now, so a missing extra fails at start-up), one :class:`RedisLease` per name."""
    client = redis_client(url)

    def build(name: str, on_lost: Callable[[], None]) -> RedisLease:
        return RedisLease(client, name, ttl_s=ttl_s, on_lost=on_lost)

    return build


class RedisLease:
    """A renewable lease on ``voyagr:lease:<name>`` (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        ttl_s: float = 15.0,  # seconds the key lives without a renewal
        renew_s: float | None = None,  # seconds between renewals; default ttl_s / 3
        deadline_s: float | None = None,  # seconds held after a good renewal; 2/3 ttl_s
        prefix: str = "voyagr:",
        on_lost: Callable[[], None] | None = None,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        deadline = ttl_s * 2 / 3 if deadline_s is None else deadline_s
        renew = ttl_s / 3 if renew_s is None else renew_s
        if not 0 < renew < deadline <= ttl_s:
            raise ConfigurationError(
                f"lease {name!r}: needs 0 < renew_s ({renew:g}) < deadline_s ({deadline:g}) "
                f"<= ttl_s ({ttl_s:g})"
            )
        self.client = client
        self.name = name
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.renew_s, self.deadline_s = renew, deadline
        self.key = f"{prefix}lease:{name}"
        self.epoch_key = f"{self.key}:epoch"
        self.claim_prefix = f"{prefix}claim:{name}:"
        self.on_lost = on_lost
        self._errors = redis_errors()
        self.now, self.wall = now, wall
        self._mutex = threading.Lock()
        self._token: str | None = None
        self._good_start = 0.0  # monotonic start of the last good renewal (or acquisition)
        self._good_wall: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.epoch = 0  # the epoch of our current (or last) acquisition
        self.max_epoch = 0  # the highest epoch seen, sent as a floor with every attempt
        self.holder = ""  # who holds the key, as last seen
        self.acquisitions = 0
        self.last_error: str | None = None

    # -- state ----------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        """True while we hold the lease and the deadline has not passed."""
        return self._token is not None and self.now() < self._good_start + self.deadline_s

    def remaining(self) -> float:
        """Seconds until the deadline (0 when not held)."""
        if self._token is None:
            return 0.0
        return max(0.0, self._good_start + self.deadline_s - self.now())

    def state(self) -> dict[str, Any]:
        good = self._good_wall
        return {
            "name": self.name,
            "held": self.held,
            "holder": self.holder or None,
            "epoch": self.epoch,
            "max_epoch": self.max_epoch,
            "acquisitions": self.acquisitions,
            "last_renewal_ts": good,
            "last_renewal_age_s": None if good is None else max(0.0, self.wall() - good),
            "last_error": self.last_error,
        }

    # -- acquire / renew / release --------------------------------------------------------
    def try_acquire(self) -> int | None:
        """The new fencing epoch if this call acquired the lease, else None (also when
        already held: renewal keeps it). Redis errors count as not acquired."""
        if self.held:
            return None
        self._drop()  # a past acquisition whose deadline passed is over
        token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        started = self.now()
        try:
            got, epoch, holder = self.client.eval(
                _ACQUIRE, 2, self.key, self.epoch_key, token, self.ttl_ms, self.max_epoch + 1
            )
        except self._errors as exc:  # redis errors, connection refused, timeouts
            self._error(exc)
            return None
        self.last_error = None
        epoch = int(epoch)
        self.max_epoch = max(self.max_epoch, epoch)
        self.holder = holder.decode() if isinstance(holder, bytes) else str(holder)
        if not got or self.now() >= started + self.deadline_s:
            return None  # a late success is left to expire: someone else takes it later
        with self._mutex:
            self._token, self._good_start, self._good_wall = token, started, self.wall()
            self.epoch = epoch
            self.acquisitions += 1
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._renew_loop, name=f"voyagr-lease-{self.name}", daemon=True
            )
            self._thread.start()
        log.info("lease %s acquired by %s, epoch %d", self.name, token, epoch)
        return epoch

    def renew_once(self) -> bool:
        """One token-checked renewal; True if it succeeded before the deadline."""
        token = self._token
        if token is None:
            return False
        started = self.now()
        raised = False
        try:
            ok = self.client.eval(_RENEW, 1, self.key, token, self.ttl_ms)
        except self._errors as exc:
            self._error(exc)
            ok, raised = 0, True
        finished = self.now()
        with self._mutex:
            if self._token != token:
                return False
            if ok and finished < self._good_start + self.deadline_s:
                self._good_start, self._good_wall = started, self.wall()
                self.last_error = None
                return True
            if ok:
                self.last_error = "renewal returned after the deadline"
            elif not raised:
                self.last_error = _GONE
            return False

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_s):
            if self.renew_once():
                continue
            if not self.held or self.last_error == _GONE:
                log.warning("lease %s lost: %s", self.name, self.last_error)
                self._drop(from_thread=True)
                if self.on_lost is not None:
                    self.on_lost()
                return

    def release(self) -> None:
        """Stop renewing and delete the key if it is still ours (clean shutdown)."""
        token = self._token
        self._drop()
        if token is None:
            return
        try:
            self.client.eval(_RELEASE, 1, self.key, token)
            log.info("lease %s released", self.name)
        except self._errors as exc:
            self._error(exc)

    def _drop(self, *, from_thread: bool = False) -> None:
        with self._mutex:
            self._token = None
            self._stop.set()
            thread, self._thread = self._thread, None
        if thread is not None and not from_thread and thread is not threading.current_thread():
            thread.join(5.0)

    def _error(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"[:200]
        if text != self.last_error:
            log.warning("lease %s: redis error: %s", self.name, text)
        self.last_error = text

    # -- slot claims ------------------------------------------------------------------------
    def claim(self, slot: int, ttl_s: float) -> bool:
        """Claim schedule slot ``slot`` once: ``SET voyagr:claim:<name>:<slot> <epoch> NX``.
        False when another holder (or this one earlier) has it, when the lease is not held,
        or when Redis cannot be reached (the work is skipped, never doubled)."""
        if not self.held:
            return False
        try:
            got = self.client.set(
                f"{self.claim_prefix}{slot}", self.epoch, nx=True, px=max(1, int(ttl_s * 1000))
            )
        except self._errors as exc:
            self._error(exc)
            return False
        return bool(got)

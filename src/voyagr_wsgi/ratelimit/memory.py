"""In-process rate-limit store: one dict of ``key -> TAT`` (a float), bounded, thread-safe.

When to use it: one process, or several where a per-process limit is acceptable (each gunicorn
worker then allows the full quota; ``voyagr-wsgi check`` warns). Use
:class:`~.redis_store.RedisStore` to share limits between workers and machines.

Design (against two faults of other in-memory limiters: memory that grows with every key
ever seen, and expiry timer threads that cost CPU and race with request-path updates):

- O(1) per decision: one ``dict.get`` and one store under one lock; no timer thread, nothing
  started at construction.
- Bounded: at most ``max_keys`` tracked keys. When a new key arrives at the cap, the oldest
  ``max_keys // 64`` insertions are dropped in one pass (amortised O(1), a C-level scan). A
  dropped key is reset to a full bucket; a key whose TAT has passed is exactly equivalent to
  an absent one, so expired keys cost nothing to forget. A key that returns after its TAT has
  passed is re-inserted at the young end, so idle-then-active clients are not the first to go.
- Memory: a compact ``str`` key (the client address as the server gave it) and a float, about
  100-130 bytes per tracked client at a million clients (``make bench`` measures it).

Usage::

    store = MemoryStore(max_keys=200_000)
    RateLimit("100/60s", store=store)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from itertools import islice

from ..errors import ConfigurationError

__all__ = ["MemoryStore"]


class MemoryStore:
    """Thread-safe GCRA store in a plain dict; ``now`` is injectable (monotonic seconds)."""

    __slots__ = ("_acquire", "_batch", "_lock", "_max", "_now", "_release", "_tats", "evicted")

    def __init__(
        self, *, max_keys: int = 1_000_000, now: Callable[[], float] = time.monotonic
    ) -> None:
        if not isinstance(max_keys, int) or max_keys < 1:
            raise ConfigurationError(f"max_keys={max_keys!r}: must be an integer >= 1")
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._max = max_keys
        self._batch = max(1, max_keys // 64)
        self._now = now
        self.evicted = 0  # keys dropped before their TAT passed or at the cap

    def __len__(self) -> int:
        return len(self._tats)

    @property
    def max_keys(self) -> int:
        return self._max

    def update(self, key: str, interval: float, tolerance: float, cost: int) -> tuple[bool, float]:
        clock, acquire, release = self._now, self._acquire, self._release  # read, not looked up
        now = clock()
        acquire()  # explicit acquire/release: half the cost of ``with lock`` here
        try:
            tats = self._tats
            tat = tats.get(key)
            if tat is not None and tat > now:
                new = tat + interval * cost
                if new - tolerance > now:
                    return False, tat - now
                tats[key] = new
                return True, new - now
            new = now + interval * cost
            if new - tolerance > now:  # cost larger than the burst: never allowed
                return False, 0.0
            if cost:
                if tat is not None:
                    del tats[key]  # expired: re-insert at the young end
                elif len(tats) >= self._max:
                    self._evict(now)
                tats[key] = new
            return True, new - now
        finally:
            release()

    def update_many(
        self, key: str, items: Sequence[tuple[str, float, float]], cost: int
    ) -> tuple[bool, list[float]]:
        """Several policies of one client under one lock: all allowed and written, or none."""
        now = self._now()
        self._acquire()
        try:
            tats = self._tats
            plan = []
            allowed = True
            for suffix, interval, tolerance in items:
                name = key + suffix
                tat = tats.get(name)
                base = tat if tat is not None and tat > now else now
                new = base + interval * cost
                if new - tolerance > now:
                    allowed = False
                plan.append((name, tat, base, new))
            if not allowed or not cost:
                return allowed, [base - now for _, _, base, _ in plan]
            for name, tat, _, new in plan:
                if tat is not None:
                    del tats[name]  # re-inserted at the young end
                elif len(tats) >= self._max:
                    self._evict(now)
                tats[name] = new
            return True, [new - now for *_, new in plan]
        finally:
            self._release()

    def _evict(self, now: float) -> None:
        tats = self._tats
        victims = list(islice(tats, self._batch))
        for victim in victims:
            if tats.pop(victim) > now:
                self.evicted += 1

    def expire(self) -> int:
        """Drop every key whose TAT has passed; returns how many (O(n), for tests/admin)."""
        with self._lock:
            now = self._now()
            dead = [k for k, tat in self._tats.items() if tat <= now]
            for key in dead:
                del self._tats[key]
            return len(dead)

    def clear(self) -> None:
        with self._lock:
            self._tats.clear()

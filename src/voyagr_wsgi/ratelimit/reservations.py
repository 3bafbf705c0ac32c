"""Worker-local reservations for a shared rate-limit store (:class:`~.redis_store.RedisStore`).

A shared store debits units *before* they are spent: one call reserves up to ``want`` units
of a client's budget on the store's clock, and this worker then spends them from memory. The
bookkeeping here is pure (no I/O, the caller passes the clock reading): per client key

- the units granted but not yet spent (``held``), the offsets (``TAT - now``) the store
  answered, the local time the call was *sent* (``granted_at``) and when the grant expires;
- the units spent since the last call and when it was made, for the adaptive size;
- the same offsets after a denial: while they show the request cannot fit, it is denied here,
  with no round trip (the store's TAT only grows, so the store would deny it too).

Sizes: a key seen for the first time reserves just the request's cost (exact, as one call
per request). Afterwards ``want = max(cost, min(cap, 2 x spent, spent x lease / elapsed))``:
the rate observed since the last call times the lease, at most doubling each call (a key must
keep its rate to grow) and at most ``cap``: ``batch`` when set, else ``burst // 16``, never
more than ``burst // 2`` (and at least 1). A grant expires ``lease = min(lease_s, tau / 10)``
seconds after its call was sent; its unspent units are dropped, never returned to the store
(returning them after the bucket had drained past them would hand them out twice).

Answers: an allowed request reports the offset the store gave minus the time elapsed since
the call, less the units this worker still holds (``offset_i - elapsed - held x T_i``, at
least 0): the client's remaining budget is what the store had left at the call plus the units
held here, never more than the burst. A denied one reports the store's offset at the denial
minus the time elapsed since.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from itertools import islice

__all__ = ["Grant", "Reservations"]

Shape = tuple[tuple[float, float], ...]  # (interval T, tolerance tau) per policy, seconds


class Grant:
    """One client's local state: what it holds, what the store said, its recent rate."""

    __slots__ = (
        "expires",
        "granted_at",
        "held",
        "interval",
        "offsets",
        "reserved_at",
        "shape",
        "spent",
        "tolerance",
    )

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.interval, self.tolerance = shape[0]
        self.held = 0  # units reserved on the store, not yet spent here
        self.offsets: list[float] = [0.0] * len(shape)  # store's TAT - now at granted_at
        self.granted_at = 0.0  # local time the reserving call was sent
        self.expires = 0.0  # local time the held units are dropped
        self.reserved_at = 0.0  # the last call, for the observed rate
        self.spent = 0  # units spent since reserved_at


class Reservations:
    """Bounded, thread-safe map ``key -> Grant``; every method takes the local ``now``."""

    def __init__(self, *, batch: int = 0, lease_s: float = 0.5, max_keys: int = 100_000) -> None:
        self.batch = batch  # 0: automatic (burst // 16)
        self.lease_s = lease_s
        self._grants: dict[str, Grant] = {}
        self._sizes: dict[Shape, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._max = max_keys
        self._evict = max(1, max_keys // 64)

    def __len__(self) -> int:
        return len(self._grants)

    def get(self, key: str) -> Grant | None:
        return self._grants.get(key)

    # -- decided here, no round trip ---------------------------------------------------
    def spend(
        self, key: str, interval: float, tolerance: float, cost: int, now: float
    ) -> tuple[bool, float] | None:
        """One policy: ``(allowed, offset)`` from local state, or None (ask the store)."""
        self._acquire()
        try:
            grant = self._grants.get(key)
            if (
                grant is None
                or grant.interval != interval
                or grant.tolerance != tolerance
                or len(grant.shape) != 1
            ):
                return None
            offset = grant.offsets[0] - (now - grant.granted_at)
            if grant.held >= cost and now < grant.expires:
                grant.held -= cost
                grant.spent += cost
                offset -= grant.held * interval
                return True, (offset if offset > 0.0 else 0.0)
            grant.held = 0  # expired, or too few for this cost: dropped
            if offset + cost * interval - tolerance > 0.0:  # the store would deny it too
                return False, (offset if offset > 0.0 else 0.0)
            return None
        finally:
            self._release()

    def spend_many(
        self, key: str, shape: Shape, cost: int, now: float
    ) -> tuple[bool, list[float]] | None:
        """Stacked policies (one grant for all): as :meth:`spend`."""
        with self._lock:
            grant = self._grants.get(key)
            if grant is None or grant.shape != shape:
                return None
            elapsed = now - grant.granted_at
            offsets = [max(0.0, o - elapsed) for o in grant.offsets]
            if grant.held >= cost and now < grant.expires:
                grant.held -= cost
                grant.spent += cost
                return True, _less(offsets, shape, grant.held)
            grant.held = 0
            if any(o + cost * t - tau > 0.0 for o, (t, tau) in zip(offsets, shape, strict=True)):
                return False, offsets
            return None

    # -- around a call to the store -------------------------------------------------------
    def want(self, key: str, shape: Shape, cost: int, now: float) -> int:
        """Units to reserve for a request of ``cost`` that must ask the store."""
        grant = self._grants.get(key)
        if grant is None or grant.shape != shape or not grant.spent:
            return cost  # a cold key (or one just denied): exact
        cap, lease = self._sizes.get(shape) or self._size(shape)
        estimate = 2 * grant.spent
        elapsed = now - grant.reserved_at
        if elapsed > 0.0:
            estimate = min(estimate, int(grant.spent * lease / elapsed))
        return max(cost, min(cap, estimate))

    def lease(self, shape: Shape) -> float:
        """How long a grant for ``shape`` lives: ``min(lease_s, tau / 10)`` seconds."""
        return (self._sizes.get(shape) or self._size(shape))[1]

    def _size(self, shape: Shape) -> tuple[int, float]:
        """``(cap, lease)`` of a policy shape, computed once (a stack has a few shapes)."""
        burst = min(int(tau / t) for t, tau in shape)
        cap = min(self.batch or max(1, burst // 16), max(1, burst // 2))
        lease = min(self.lease_s, min(tau for _, tau in shape) / 10)
        if len(self._sizes) >= 4096:
            self._sizes.clear()
        self._sizes[shape] = (cap, lease)
        return cap, lease

    def record(
        self,
        key: str,
        shape: Shape,
        cost: int,
        sent: float,
        allowed: bool,
        granted: int,
        offsets: list[float],
    ) -> list[float]:
        """Keep what the store answered to a call sent at ``sent``; the offsets to report."""
        with self._lock:
            grants = self._grants
            old = grants.pop(key, None)
            if old is not None and old.shape != shape:
                old = None
            if not allowed and old is not None and old.held and sent < old.expires:
                grants[key] = old  # another thread's grant came in meanwhile: keep it
                return offsets
            grant = Grant(shape)
            grant.offsets = offsets
            grant.granted_at = grant.reserved_at = sent
            if allowed:
                grant.held = granted - cost
                grant.spent = cost
                grant.expires = sent + self.lease(shape)
                if old is not None and old.held and sent < old.expires:
                    # two threads reserved at once: keep both, dropped at the earlier expiry
                    grant.held += old.held
                    grant.expires = min(grant.expires, old.expires)
            if len(grants) >= self._max:
                for victim in list(islice(grants, self._evict)):
                    del grants[victim]
            grants[key] = grant
            return _less(offsets, shape, grant.held)

    def held(self, key: str, shape: Shape, offsets: Sequence[float], now: float) -> list[float]:
        """A peek's offsets from the store, less the units this worker still holds."""
        with self._lock:
            grant = self._grants.get(key)
            if grant is None or grant.shape != shape or not grant.held or now >= grant.expires:
                return list(offsets)
            return _less(offsets, shape, grant.held)

    def clear(self) -> None:
        with self._lock:
            self._grants.clear()


def _less(offsets: Sequence[float], shape: Shape, held: int) -> list[float]:
    """Offsets with ``held`` units given back to the client (``o - held x T``, at least 0)."""
    return [max(0.0, o - held * t) for o, (t, _) in zip(offsets, shape, strict=True)]

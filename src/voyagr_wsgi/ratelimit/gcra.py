"""GCRA, the generic cell rate algorithm: one number per client, the TAT.

The *theoretical arrival time* (TAT) is when the client's bucket would be empty again if it
stopped now. With emission interval ``T = window / quota`` and tolerance ``tau = T * burst``,
a request of ``cost`` units arriving at ``now`` is allowed iff::

    max(TAT, now) + cost * T - tau <= now

and then ``TAT = max(TAT, now) + cost * T``. A denied request changes nothing (no penalty). A
missing or past TAT means a full bucket, so a store may forget a key once ``TAT <= now``: the
state is one float, and its useful life is ``TAT - now``.

``burst`` defaults to the quota: ``100/60s`` lets a fresh client make 100 requests at once,
then one every 0.6 s. Sources: ITU-T I.371 (GCRA), brandur/redis-cell, throttled (Go).

Everything here is pure arithmetic on *offsets* (``TAT - now`` in seconds after the
decision), so the stores (in-process monotonic clock, Redis server clock) and the header math
never compare clocks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import ConfigurationError
from .spec import Rate

__all__ = ["Policy", "step"]

#: slack on the tolerance, absorbing float rounding when many intervals are summed: relative
#: (1e-6 of the burst), capped at half an interval so that it never adds a whole unit (with
#: an uncapped 1e-6, a quota of 1e8 gave 100 extra requests and ``r`` above ``q``)
_SLACK = 1e-6
_SLACK_MAX = 0.5
_NAME = re.compile(r"^[\x20-\x7e]{1,64}$")
_ceil = math.ceil


@dataclass(frozen=True, slots=True)
class Policy:
    """A named rate with its burst, and the precomputed GCRA constants."""

    name: str
    rate: Rate
    burst: int
    interval: float  # seconds per unit (T)
    tolerance: float  # seconds (tau = T * burst, plus a tiny float slack)

    @classmethod
    def build(cls, name: str, rate: Rate, burst: int | None = None) -> Policy:
        if not _NAME.match(name):
            raise ConfigurationError(
                f"rate-limit policy name {name!r}: use printable ASCII (it is sent as a "
                "structured-field string in RateLimit-Policy)"
            )
        burst = rate.quota if burst is None else burst
        interval = rate.window_s / rate.quota
        slack = min(burst * _SLACK, _SLACK_MAX)
        return cls(name, rate, burst, interval, interval * (burst + slack))

    @property
    def window_header(self) -> int:
        """``w`` for RateLimit-Policy: whole seconds (the draft has no sub-second windows)."""
        return max(1, math.ceil(self.rate.window_s))

    def state(self, offset: float) -> tuple[int, int]:
        """``(remaining, reset)`` of a client at ``offset = TAT - now`` (>= 0): the units it
        could spend now (``r`` of the RateLimit field) and the whole seconds, rounded up,
        until that number next grows (``t``; 0 when the bucket is full, else >= 1).

        The one place this arithmetic lives: the layer's fields on allowed responses (single
        and stacked policies), its 429 and ``explain`` all read it.
        """
        left = int((self.tolerance - offset) / self.interval)
        if left >= self.burst:  # the slack is under one interval: never above the burst
            return self.burst, 0
        if left < 0:
            left = 0  # over the tolerance (a denied request's state)
        wait = offset - self.tolerance + (left + 1) * self.interval
        return left, (_ceil(wait - 1e-9) if wait > 1e-9 else 1)

    def remaining(self, offset: float) -> int:
        """Units a client could still spend now: ``state(offset)[0]``."""
        return self.state(offset)[0]

    def retry_after(self, offset: float, cost: int) -> int:
        """Whole seconds (>= 1, rounded up) until a request of ``cost`` would be allowed."""
        wait = offset + cost * self.interval - self.tolerance
        return max(1, _ceil(wait - 1e-9))

    def can_ever_allow(self, cost: int) -> bool:
        return cost * self.interval <= self.tolerance


def step(
    tat: float | None, now: float, interval: float, tolerance: float, cost: int
) -> tuple[bool, float | None, float]:
    """One GCRA decision: ``(allowed, new_tat, offset)`` with ``offset = TAT - now`` after it.

    The reference every store must agree with (the contract tests compare them).
    """
    base = now if tat is None or tat < now else tat
    new_tat = base + cost * interval
    if new_tat - tolerance > now:
        return False, tat, base - now
    if cost == 0:
        return True, tat, base - now
    return True, new_tat, new_tat - now

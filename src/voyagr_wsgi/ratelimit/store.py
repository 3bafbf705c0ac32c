"""The storage Protocol every rate-limit store implements.

A store applies one GCRA decision (see :mod:`.gcra`) atomically on its own clock and reports
the result as an *offset*, ``TAT - now`` in seconds after the decision, so the caller never
needs the store's clock. Implementations: :class:`~.memory.MemoryStore` (one process,
bounded) and :class:`~.redis_store.RedisStore` (shared by workers and machines).

A store that cannot reach its backend raises :class:`~voyagr_wsgi.errors.StorageError`; the
layer then applies its failure policy (fail open or closed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["MultiStore", "Store"]


@runtime_checkable
class Store(Protocol):
    def update(self, key: str, interval: float, tolerance: float, cost: int) -> tuple[bool, float]:
        """Decide for ``key``: ``(allowed, max(TAT - now, 0))`` after the decision.

        ``interval`` and ``tolerance`` are GCRA's T and tau in seconds; ``cost`` >= 0
        units (0 peeks and never writes). Denied requests write nothing.
        """
        ...

    def clear(self) -> None:
        """Forget every key (tests, admin reset)."""
        ...


@runtime_checkable
class MultiStore(Protocol):
    """A store that can also decide several policies of one client at once (stacked limits
    such as ``10/1s;1000/1h``): all are allowed and written, or none is."""

    def update_many(
        self, key: str, items: Sequence[tuple[str, float, float]], cost: int
    ) -> tuple[bool, list[float]]:
        """Decide ``(suffix, interval, tolerance)`` for the keys ``key + suffix`` atomically:
        ``(allowed, [max(TAT - now, 0) per item])``; a denial writes nothing."""
        ...

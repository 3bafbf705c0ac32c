"""Cache memory as a labelled estimate: entries x the size of a sampled entry.

Neither ``functools.lru_cache`` nor ``cachetools`` knows how many bytes its entries hold
(``cachetools`` does when built with ``getsizeof=``, then that figure is used as is). The
pollers of :mod:`.trackers` report, for the others, an estimate: the mean size of
:data:`SAMPLE` entries spread over the cache (key and value, ``sys.getsizeof`` followed
:data:`DEPTH` levels into containers and instance ``__dict__``s, at most :data:`ITEMS`
items per container, scaled to its length), plus the cache's own per-entry bookkeeping
(its dict slots, its order links), times the number of entries. Objects shared between
entries are counted in each, so the estimate leans high.

The work is done when the registry polls (snapshots, every second under the snapshot
writer), never on a cache call (listing the entries to sample is a pointer walk, the
sizing is bounded), and re-sampled at most every :data:`RESAMPLE_S` seconds:
between two samples the estimate follows the entry count. The figure is marked
``memory_estimated: true`` in the JSON and ``estimate="true"`` in Prometheus.

An ``lru_cache`` keeps its entries inside C; what it holds is read with
:func:`gc.get_referents` (its keys and results, the way the garbage collector sees them).
Where that shows no cache dictionary (another Python implementation) the memory stays
unknown (``None``).
"""

from __future__ import annotations

import gc
import itertools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DEPTH", "ITEMS", "RESAMPLE_S", "SAMPLE", "Estimator", "deep_size"]

SAMPLE = 10  # entries sized per sample
DEPTH = 3  # container levels followed
ITEMS = 10  # items sized per container (the rest scaled)
RESAMPLE_S = 30.0  # seconds between two samples

_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None))
_LEAVES = (*_ATOMS, type)


def deep_size(obj: Any, depth: int = DEPTH, seen: set[int] | None = None) -> int:
    """``sys.getsizeof(obj)`` plus a scaled sample of what it holds, ``depth`` levels down."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj, 0)
    if depth <= 0 or isinstance(obj, _LEAVES):
        return size
    parts: list[Any]
    if isinstance(obj, dict):
        sampled = list(itertools.islice(obj.items(), ITEMS))
        parts = [x for kv in sampled for x in kv]
    elif isinstance(obj, list | tuple | set | frozenset):
        sampled = parts = list(itertools.islice(obj, ITEMS))
    else:
        attrs = getattr(obj, "__dict__", None)
        return size + (deep_size(attrs, depth - 1, seen) if isinstance(attrs, dict) else 0)
    if sampled:
        held = sum(deep_size(x, depth - 1, seen) for x in parts)
        size += held * len(obj) // len(sampled)
    return size


def _mean_entry(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """The mean deep size of :data:`SAMPLE` (key, value) pairs spread over ``pairs``."""
    if not pairs:
        return None
    step = max(1, len(pairs) // SAMPLE)
    sample = pairs[::step][:SAMPLE]
    return sum(deep_size(k) + deep_size(v) for k, v in sample) / len(sample)


def lru_entry_size(fn: Any) -> float | None:
    """Bytes per entry of an ``lru_cache`` wrapper (None: its entries cannot be seen)."""
    entries = fn.cache_info().currsize
    if not entries:
        return None
    held = gc.get_referents(fn)
    own = getattr(fn, "__dict__", None)
    cache = next(
        (o for o in held if type(o) is dict and o is not own and len(o) == entries), None
    )  # a size changing meanwhile: None now, the next poll samples
    if cache is None:
        return None
    first = next(iter(cache.values()))
    per_slot = sys.getsizeof(cache) / len(cache)
    if type(first).__name__ != "_lru_list_elem":  # maxsize=None: a dict of key -> result
        mean = _mean_entry(list(cache.items()))
        return None if mean is None else mean + per_slot
    skip = {id(cache), id(getattr(fn, "__wrapped__", None)), id(own)}
    objects = [o for o in held if id(o) not in skip and not isinstance(o, type)]
    mean = _mean_entry(list(zip(objects[::2], objects[1::2], strict=False)))  # key, result
    return None if mean is None else mean + sys.getsizeof(first) + per_slot


def mapping_entry_size(cache: Any) -> float | None:
    """Bytes per entry of a ``cachetools`` cache (its data dict, order and links)."""
    attrs = vars(cache)
    data = attrs.get("_Cache__data")
    if not isinstance(data, dict) or not data:
        return None
    mean = _mean_entry(list(data.items())) or 0.0
    books = 0.0
    for value in attrs.values():  # the LRU order, the TTL links: one slot per entry
        if isinstance(value, dict) and len(value) == len(data):
            books += sys.getsizeof(value) / len(value)
            first = next(iter(value.values()))
            if first is not None and not isinstance(first, _ATOMS):
                books += deep_size(first, 1)
    return mean + books


class Estimator:
    """``entries x bytes per entry``, re-sampled at most every :data:`RESAMPLE_S` seconds."""

    def __init__(
        self, entry_size: Callable[[], float | None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.entry_size = entry_size
        self.clock = clock
        self._per_entry: float | None = None
        self._at = float("-inf")

    def __call__(self, entries: int) -> int | None:
        if entries <= 0:
            return 0
        now = self.clock()
        if self._per_entry is None or now - self._at >= RESAMPLE_S:
            size = self.entry_size()
            if size is not None:
                self._per_entry, self._at = size, now
        return None if self._per_entry is None else round(self._per_entry * entries)

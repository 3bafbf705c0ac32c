"""Rate limiting: GCRA per client, in memory or on Redis.

The pieces, split by role (see each module's docs):

- :mod:`.spec`: ``"100/60s"`` -> :class:`Rate`; :mod:`.gcra`: the pure algorithm
  (:class:`Policy`);
- :mod:`.store`: the :class:`Store` Protocol; :mod:`.memory`: :class:`MemoryStore` (bounded,
  per process); :mod:`.redis_store`: :class:`RedisStore` (shared, Lua on Redis's clock,
  with worker-local reservations: :mod:`.reservations`);
- :mod:`.layer`: the WSGI layer :class:`RateLimit` (also ``voyagr_wsgi.layers.RateLimit``);
  :mod:`.rules`: per-route :class:`Rule`; :mod:`.keys`: client keys (IPv6 /64) and the
  allow-list; :mod:`.responses`: the RateLimit fields and the 429 / 503 bodies;
  :mod:`.config`: :class:`RateLimitSettings`; :mod:`.area`: what the settings contribute to
  a stack (the layer, its store, the deploy checks).

Benchmarks (``make bench``, ``benchmarks/README.md``): about 1 us per request for the layer,
0.35 us per in-memory decision, 115 bytes per tracked client at a million clients.

``compose(app, Settings.from_env())`` builds the layer from ``RATE_LIMIT_*`` variables;
``voyagr-wsgi check`` warns when the in-memory store runs under several workers. The names
below load lazily: importing this package loads none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    from .area import deploy_checks as deploy_checks
    from .area import worker_count as worker_count
    from .config import RateLimitSettings as RateLimitSettings
    from .gcra import Policy as Policy
    from .memory import MemoryStore as MemoryStore
    from .rules import Rule as Rule
    from .spec import Rate as Rate
    from .spec import parse_rate as parse_rate
    from .spec import parse_rates as parse_rates
    from .store import Store as Store

_WHERE = {
    "MemoryStore": ".memory",
    "Policy": ".gcra",
    "Rate": ".spec",
    "RateLimitSettings": ".config",
    "Rule": ".rules",
    "Store": ".store",
    "deploy_checks": ".area",
    "parse_rate": ".spec",
    "parse_rates": ".spec",
    "worker_count": ".area",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy(__name__, _WHERE)

"""Rate limiting: GCRA per client, in memory or on Redis.

The pieces, split by role (see each module's docs):

- :mod:`.spec`: ``"100/60s"`` -> :class:`Rate`; :mod:`.gcra`: the pure algorithm
  (:class:`Policy`);
- :mod:`.store`: the :class:`Store` Protocol; :mod:`.memory`: :class:`MemoryStore` (bounded,
  per process); :mod:`.redis_store`: :class:`RedisStore` (shared, Lua on Redis's clock);
- :mod:`.layer`: the WSGI layer :class:`RateLimit` (also ``voyagr_wsgi.layers.RateLimit``);
  :mod:`.rules`: per-route :class:`Rule`; :mod:`.keys`: client keys (IPv6 /64) and the
  allow-list; :mod:`.responses`: the RateLimit fields and the 429 / 503 bodies;
  :mod:`.config`: :class:`RateLimitSettings`.

Benchmarks (``make bench``, ``benchmarks/README.md``): about 1 us per request for the layer,
0.35 us per in-memory decision, 115 bytes per tracked client at a million clients.

``compose(app, Settings.from_env())`` builds the layer from ``RATE_LIMIT_*`` variables;
``voyagr-wsgi check`` warns when the in-memory store runs under several workers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import RateLimitSettings
from .gcra import Policy
from .memory import MemoryStore
from .rules import Rule
from .spec import Rate, parse_rate, parse_rates
from .store import Store

if TYPE_CHECKING:
    from ..check import Finding
    from ..compose import BuildContext
    from ..settings import Settings

__all__ = [
    "MemoryStore",
    "Policy",
    "Rate",
    "RateLimitSettings",
    "Rule",
    "Store",
    "deploy_checks",
    "parse_rate",
    "parse_rates",
    "setup",
]


def setup(settings: Settings, context: BuildContext) -> None:
    """Nothing to register before the layers: :meth:`RateLimit.from_settings` builds the
    store and adds its health source (``ratelimit:store``) itself."""


def worker_count(environ: Mapping[str, str] | None = None) -> int:
    """Workers a pre-fork server will run, from ``WEB_CONCURRENCY`` / ``GUNICORN_CMD_ARGS``."""
    env = os.environ if environ is None else environ
    counts = [1]
    concurrency = env.get("WEB_CONCURRENCY", "").strip()
    if concurrency.isdigit():
        counts.append(int(concurrency))
    args = env.get("GUNICORN_CMD_ARGS", "")
    match = re.search(r"(?:-w|--workers)(?:=|\s+)(\d+)", args)
    if match:
        counts.append(int(match.group(1)))
    return max(counts)


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``voyagr-wsgi check`` findings for rate limiting."""
    from ..check import Finding

    section = settings.ratelimit
    found: list[Finding] = []
    if not section.enabled:
        found.append(Finding("WARNING", "voyagr.W301", "RATE_LIMIT_ENABLED is off: no rate limit"))
        return found
    workers = worker_count(environ)
    if section.storage == "memory" and workers > 1:
        found.append(
            Finding(
                "WARNING",
                "voyagr.W302",
                f"RATE_LIMIT_STORAGE=memory with {workers} workers: each worker keeps its own "
                f"budget, so a client gets up to {workers}x RATE_LIMIT_REQUESTS; "
                "set RATE_LIMIT_STORAGE=redis://...",
            )
        )
    return found

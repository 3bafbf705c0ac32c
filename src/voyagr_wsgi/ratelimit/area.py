"""The rate-limiting area: what ``RATE_LIMIT_*`` settings contribute to a stack.

- the ``RateLimit`` layer with its store: :class:`~.memory.MemoryStore` (``memory``, the
  default) or :class:`~.redis_store.RedisStore` (``redis://...``, the ``redis`` extra; its
  ``ratelimit:store`` health source); nothing when ``RATE_LIMIT_ENABLED=false``;
- ``voyagr-wsgi check`` findings: rate limiting off, the memory store under several workers.

Redis is imported only when ``RATE_LIMIT_STORAGE`` names it; without the extra installed that
is a :class:`~voyagr_wsgi.errors.ConfigurationError` naming ``pip install 'voyagr-wsgi[redis]'``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._extras import require

if TYPE_CHECKING:
    from .._build import BuildContext, Finding
    from ..settings import Settings
    from .layer import RateLimit
    from .store import Store

__all__ = ["build_layer", "contribute", "deploy_checks", "worker_count"]


def contribute(settings: Settings, context: BuildContext) -> None:
    layer = build_layer(settings, context)
    if layer is not None:
        context.add_layer(layer)


def build_layer(settings: Settings, context: BuildContext | None = None) -> RateLimit | None:
    """The unbound ``RateLimit`` the settings ask for (None when disabled); with a context,
    its store and health source are registered there."""
    from .layer import RateLimit
    from .rules import Rule

    section = settings.ratelimit
    if not section.enabled:
        return None
    store: Store
    if section.storage == "memory":
        from .memory import MemoryStore

        store = MemoryStore(max_keys=section.max_keys)
    else:
        require("redis", f"RATE_LIMIT_STORAGE={section.storage.split('://')[0]}://...",
                extra="redis")  # fmt: skip
        from .redis_store import RedisStore, store_health

        store = RedisStore(
            section.storage,
            prefix=section.redis_prefix,
            batch=section.redis_batch,
            lease_s=section.redis_lease_s,
        )
        if context is not None:
            context.health.add(store_health(store, section.redis_failure))
    if context is not None:
        context.ratelimit = store
    return RateLimit(
        section.spec,
        burst=section.burst,
        rules=[Rule(path, spec) for path, spec in section.routes],
        exempt=section.exempt_paths,
        allow=section.allow,
        store=store,
        ipv6_prefix=section.ipv6_prefix,
        headers=section.headers,
        legacy_headers=section.legacy_headers,
        failure=section.redis_failure,
        counters=None if context is None else context.counters,
    )


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
    from .._build import Finding

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

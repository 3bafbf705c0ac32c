"""Rate-limit settings (``settings.ratelimit``), read from the environment.

Variables (documented in ``docs/env/30-ratelimit.env``):

- ``RATE_LIMIT_ENABLED`` (true), ``RATE_LIMIT_REQUESTS`` (100) per
  ``RATE_LIMIT_WINDOW_SECONDS`` (60), ``RATE_LIMIT_BURST`` (empty = the quota);
- ``RATE_LIMIT_STORAGE``: ``memory`` (default) or ``redis://host:port/db`` (``rediss://``);
- ``RATE_LIMIT_REDIS_FAILURE``: ``open`` (default: let requests through), ``closed`` (503) or
  ``local`` (each process limits alone);
- ``RATE_LIMIT_REDIS_PREFIX`` (``vy:rl:``); ``RATE_LIMIT_REDIS_BATCH`` (0: automatic,
  ``burst // 16``; 1: a round trip per request) and ``RATE_LIMIT_REDIS_LEASE_SECONDS`` (0.5):
  the reservations of :class:`~.redis_store.RedisStore`;
- ``RATE_LIMIT_MAX_KEYS`` (1000000), ``RATE_LIMIT_IPV6_PREFIX`` (64);
- ``RATE_LIMIT_HEADERS`` (true), ``RATE_LIMIT_LEGACY_HEADERS`` (false);
- ``RATE_LIMIT_EXEMPT_PATHS`` (``/static/*,/favicon.ico``), ``RATE_LIMIT_ALLOW`` (CIDRs),
  ``RATE_LIMIT_ROUTES`` (``/login=5/60s,/api/*=10/1m``).

Paths follow the one path grammar (:mod:`voyagr_wsgi.layers._paths`): exact or a prefix
ending in ``/*``; any other syntax is a ConfigurationError naming the variable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .._env import Env
from ..errors import ConfigurationError
from ..layers._paths import check_pattern
from .spec import Rate, parse_rates

__all__ = ["RateLimitSettings"]


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    enabled: bool = True
    requests: int = 100
    window_s: float = 60.0  # seconds
    burst: int | None = None  # None: the quota
    storage: str = "memory"  # or a redis:// URL
    redis_failure: Literal["open", "closed", "local"] = "open"
    redis_prefix: str = "vy:rl:"  # key prefix: one per app sharing a Redis
    redis_batch: int = 0  # most units one worker reserves per call; 0: burst // 16
    redis_lease_s: float = 0.5  # seconds a reservation lives (at most a tenth of the burst)
    max_keys: int = 1_000_000
    ipv6_prefix: int = 64
    headers: bool = True
    legacy_headers: bool = False
    exempt_paths: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (path, spec)
    also: tuple[str, ...] = ()  # more rates the default policy stacks ("1000/1h")

    @classmethod
    def from_env(cls, env: Env) -> RateLimitSettings:
        burst = env.int("RATE_LIMIT_BURST", 0, minimum=0) or None
        storage = env.str("RATE_LIMIT_STORAGE", "memory")
        if storage != "memory" and not storage.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                f"RATE_LIMIT_STORAGE={storage!r}: use 'memory' or a redis://host:port/db URL"
            )
        redis_prefix = env.str("RATE_LIMIT_REDIS_PREFIX", "vy:rl:")
        if not re.fullmatch(r"[!-z|~]{1,64}", redis_prefix):  # printable, no space, no { }
            raise ConfigurationError(
                f"RATE_LIMIT_REDIS_PREFIX={redis_prefix!r}: 1-64 printable characters without "
                "spaces or braces (example: myapp:rl:)"
            )
        routes = []
        for item in env.list("RATE_LIMIT_ROUTES"):
            path, sep, spec = item.partition("=")
            if not sep or not path.startswith("/"):
                raise ConfigurationError(
                    f"RATE_LIMIT_ROUTES: {item!r} is not '/path=<requests>/<window>' "
                    "(example: /login=5/60s;20/1h,/api/*=10/1m)"
                )
            check_pattern(path.strip(), "RATE_LIMIT_ROUTES")
            parse_rates(spec, setting="RATE_LIMIT_ROUTES")
            routes.append((path.strip(), spec.strip()))
        settings = cls(
            enabled=env.bool("RATE_LIMIT_ENABLED", True),
            requests=env.int("RATE_LIMIT_REQUESTS", 100, minimum=1),
            window_s=env.float("RATE_LIMIT_WINDOW_SECONDS", 60.0, minimum=0.001),
            burst=burst,
            storage=storage,
            redis_failure=env.choice(
                "RATE_LIMIT_REDIS_FAILURE", "open", ("open", "closed", "local")
            ),
            redis_prefix=redis_prefix,
            redis_batch=env.int("RATE_LIMIT_REDIS_BATCH", 0, minimum=0),
            redis_lease_s=env.float(
                "RATE_LIMIT_REDIS_LEASE_SECONDS", 0.5, minimum=0.01, maximum=60.0
            ),
            max_keys=env.int("RATE_LIMIT_MAX_KEYS", 1_000_000, minimum=1),
            ipv6_prefix=env.int("RATE_LIMIT_IPV6_PREFIX", 64, minimum=1, maximum=128),
            headers=env.bool("RATE_LIMIT_HEADERS", True),
            legacy_headers=env.bool("RATE_LIMIT_LEGACY_HEADERS", False),
            exempt_paths=env.paths("RATE_LIMIT_EXEMPT_PATHS"),
            allow=env.list("RATE_LIMIT_ALLOW"),
            routes=tuple(routes),
            also=env.list("RATE_LIMIT_ALSO"),
        )
        if settings.also:  # each a rate, none with the quota's own window
            parse_rates(settings.spec, setting="RATE_LIMIT_ALSO (with the quota's window)")
        return settings

    @property
    def spec(self) -> str:
        """The default policy's spec: the quota per window, then the ``also`` rates."""
        return ";".join((str(self.rate), *self.also))

    @property
    def rate(self) -> Rate:
        return Rate(self.requests, self.window_s)

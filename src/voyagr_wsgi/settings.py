"""Settings: every option of the stack, read from the environment in one place.

``Settings.from_env()`` reads ``os.environ`` (or a mapping you pass) and validates every value;
a bad one raises :class:`~voyagr_wsgi.ConfigurationError` naming the variable and what it
accepts. The ``.env.production`` template at the repository root lists every variable with its
default and meaning. ``compose(app, settings)`` turns a ``Settings`` into the layer stack.

The request-path options live on ``Settings`` itself; each service area keeps its options in
its own section (``settings.ratelimit``, ``settings.metrics``, ``settings.backups``,
``settings.alerts``), defined beside the code that uses them.

Defaults are safe: nothing forwarded is trusted, admin endpoints answer loopback only until a
token is set, cross-origin protection is on. ``ENFORCE_HTTPS`` is off by default because a
redirect behind an undeclared TLS-terminating proxy loops forever; ``voyagr-wsgi check``
warns about it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ._env import Env
from .alerts.config import AlertSettings
from .backups.config import BackupSettings
from .errors import ConfigurationError
from .metrics.config import MetricsSettings
from .ratelimit.config import RateLimitSettings
from .secret import Secret, bearer_token

__all__ = ["Network", "Settings"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Preset = Literal["balanced", "strict", "api", "helmet", "django", "owasp"]


@dataclass(frozen=True, slots=True)
class Settings:
    """All options of a voyagr_wsgi stack. Build with ``Settings.from_env()`` or directly."""

    # -- proxy trust --------------------------------------------------------------------
    trusted_proxies: tuple[Network, ...] = ()
    trusted_proxy_headers: Literal["x-forwarded", "forwarded", "auto"] = "x-forwarded"
    trusted_proxy_prefix: bool = False  # honour X-Forwarded-Prefix from trusted proxies
    # -- host check ---------------------------------------------------------------------
    allowed_hosts: tuple[str, ...] = ()
    # -- HTTPS redirect -----------------------------------------------------------------
    enforce_https: bool = False
    https_redirect_exempt: tuple[str, ...] = ()
    https_redirect_host: str = ""  # "" = the request's own host
    https_redirect_unsafe: Literal["redirect", "reject"] = "redirect"
    # -- security headers ---------------------------------------------------------------
    security_preset: Preset = "balanced"
    hsts: bool = True
    hsts_max_age: int | None = None  # seconds; None: the preset's (1 y; strict 2 y)
    hsts_include_subdomains: bool = True
    hsts_preload: bool = False
    csp: str | None = None  # a full policy overriding the preset's
    csp_report_only: bool = False
    csp_nonce: bool = False
    #: who may frame the pages (CSP frame-ancestors and X-Frame-Options): None: the preset's
    #: ('none', DENY, for balanced, strict, api, django, owasp; 'self' for helmet)
    frame_ancestors: Literal["self", "none"] | None = None
    #: None: the preset's ("0"; the django preset sends none); an explicit value always wins
    x_xss_protection: Literal["0", "1; mode=block"] | None = None
    secure_cookies: bool = True
    #: cookie names left without HttpOnly (JavaScript reads them): ("csrftoken",)
    secure_cookies_httponly_exempt: tuple[str, ...] = ()
    #: per-path SecurityHeaders options, code only: {"/docs/*": {"csp": "..."}} (first match)
    security_routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # -- cross-origin protection --------------------------------------------------------
    csrf_enabled: bool = True
    csrf_trusted_origins: tuple[str, ...] = ()
    csrf_exempt_paths: tuple[str, ...] = ()
    # -- admin endpoints ----------------------------------------------------------------
    admin_token: Secret | None = None
    # -- background services -----------------------------------------------------------
    state_dir: str = ".voyagr"  # lock file and per-worker metrics files live here
    # -- fleet (voyagr_wsgi.lease, voyagr_wsgi.alerts.fleet) -----------------------------
    #: redis://...: singleton services also need a Redis lease ("" = per-machine flock only)
    services_lease_url: str = ""
    services_lease_s: float = 15.0  # lease TTL, seconds; renewed every third of it
    #: redis://...: alert notifications deduplicated fleet-wide ("" = SERVICES_LEASE_URL)
    alert_dedup_url: str = ""
    # -- service areas ------------------------------------------------------------------
    ratelimit: RateLimitSettings = field(default_factory=RateLimitSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    backups: BackupSettings = field(default_factory=BackupSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    @classmethod
    def from_env(cls, mapping: Mapping[str, str] | None = None) -> Settings:
        """Read every variable from ``mapping`` (default ``os.environ``) and validate it."""
        env = Env(mapping)
        xss = env.str("X_XSS_PROTECTION") or None
        if xss not in ("0", "1; mode=block", None):
            raise ConfigurationError(
                f"X_XSS_PROTECTION={xss!r} is not accepted; use '0' (OWASP) or '1; mode=block'"
            )
        return cls(
            trusted_proxies=env.networks("TRUSTED_PROXIES"),
            trusted_proxy_headers=env.choice(
                "TRUSTED_PROXY_HEADERS", "x-forwarded", ("x-forwarded", "forwarded", "auto")
            ),
            trusted_proxy_prefix=env.bool("TRUSTED_PROXY_PREFIX", False),
            allowed_hosts=_hosts(env.list("ALLOWED_HOSTS")),
            enforce_https=env.bool("ENFORCE_HTTPS", False),
            https_redirect_exempt=env.paths("HTTPS_REDIRECT_EXEMPT"),
            https_redirect_host=env.str("HTTPS_REDIRECT_HOST"),
            https_redirect_unsafe=env.choice(
                "HTTPS_REDIRECT_UNSAFE", "redirect", ("redirect", "reject")
            ),
            security_preset=env.choice(
                "SECURITY_PRESET",
                "balanced",
                ("balanced", "strict", "api", "helmet", "django", "owasp"),
            ),
            hsts=env.bool("HSTS_ENABLED", True),
            hsts_max_age=env.int("HSTS_MAX_AGE", None, minimum=0),  # type: ignore[arg-type]
            hsts_include_subdomains=env.bool("HSTS_INCLUDE_SUBDOMAINS", True),
            hsts_preload=env.bool("HSTS_PRELOAD", False),
            csp=env.str("CSP_POLICY") or None,
            csp_report_only=env.bool("CSP_REPORT_ONLY", False),
            csp_nonce=env.bool("CSP_NONCE", False),
            frame_ancestors=env.choice(  # type: ignore[arg-type]
                "SECURITY_FRAME_ANCESTORS", "", ("self", "none")
            )
            or None,
            x_xss_protection=xss,  # type: ignore[arg-type]
            secure_cookies=env.bool("SECURE_COOKIES", True),
            secure_cookies_httponly_exempt=_cookie_names(
                env.list("SECURE_COOKIES_HTTPONLY_EXEMPT")
            ),
            csrf_enabled=env.bool("CSRF_ENABLED", True),
            csrf_trusted_origins=env.list("CSRF_TRUSTED_ORIGINS"),
            csrf_exempt_paths=env.paths("CSRF_EXEMPT_PATHS"),
            admin_token=bearer_token(env.secret("VOYAGR_ADMIN_TOKEN")),
            state_dir=env.str("VOYAGR_STATE_DIR", ".voyagr"),
            services_lease_url=_redis_url(env, "SERVICES_LEASE_URL"),
            services_lease_s=env.float("SERVICES_LEASE_SECONDS", 15.0, minimum=1.0),
            alert_dedup_url=_redis_url(env, "ALERT_DEDUP_URL"),
            ratelimit=RateLimitSettings.from_env(env),
            metrics=MetricsSettings.from_env(env),
            backups=BackupSettings.from_env(env),
            alerts=AlertSettings.from_env(env),
        )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)


def _redis_url(env: Env, name: str) -> str:
    url = env.str(name)
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"{name}={url!r} is not a Redis URL; accepts redis://, rediss://, unix:// or empty"
        )
    return url


def _cookie_names(items: tuple[str, ...]) -> tuple[str, ...]:
    from .layers._cookies import cookie_names

    cookie_names(items, "SECURE_COOKIES_HTTPONLY_EXEMPT")
    return items


def _hosts(items: tuple[str, ...]) -> tuple[str, ...]:
    for item in items:
        bare = item.lstrip(".")
        if item != "*" and (not bare or any(c in bare for c in "/ @\\")):
            raise ConfigurationError(
                f"ALLOWED_HOSTS: {item!r} is not a host name; accepts a comma list of "
                "names (example.com), subdomain wildcards (.example.com), IPs or '*'"
            )
    return tuple(item.lower() for item in items)

"""``MetricsSettings``: the metrics, health-threshold and access-log options.

Read by ``Settings.from_env()``; every variable is documented in ``docs/env/40-metrics.env``.
A bad value raises :class:`~voyagr_wsgi.ConfigurationError` naming the variable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._env import Env
from ..errors import ConfigurationError
from .routes import check_templates

__all__ = ["HealthThresholds", "MetricsSettings"]


@dataclass(frozen=True, slots=True)
class HealthThresholds:
    """Where the figures turn health ``warn`` / ``fail`` (see ``metrics.health``)."""

    window_s: float = 300.0  # seconds of history the health checks look at
    min_requests: int = 20  # fewer requests (or calls) in the window: rates are not judged
    response_time_warn_s: float = 1.0  # p95 latency
    response_time_fail_s: float = 5.0
    error_rate_warn: float = 0.05  # ratio of 5xx + exceptions
    error_rate_fail: float = 0.25
    cache_hit_rate_warn: float = 0.5  # below this
    cache_hit_rate_fail: float = 0.2
    upstream_failure_rate_warn: float = 0.1
    upstream_failure_rate_fail: float = 0.3
    slow_queries_warn: int = 1  # slow queries in the window
    slow_queries_fail: int = 50

    @classmethod
    def from_env(cls, env: Env) -> HealthThresholds:
        f, i = env.float, env.int
        t = cls(
            window_s=f("HEALTH_WINDOW_SECONDS", 300.0, minimum=1.0),
            min_requests=i("HEALTH_MIN_REQUESTS", 20, minimum=1),
            response_time_warn_s=f("HEALTH_RESPONSE_TIME_WARN_SECONDS", 1.0, minimum=0.0),
            response_time_fail_s=f("HEALTH_RESPONSE_TIME_FAIL_SECONDS", 5.0, minimum=0.0),
            error_rate_warn=f("HEALTH_ERROR_RATE_WARN", 0.05, minimum=0.0, maximum=1.0),
            error_rate_fail=f("HEALTH_ERROR_RATE_FAIL", 0.25, minimum=0.0, maximum=1.0),
            cache_hit_rate_warn=f("HEALTH_CACHE_HIT_RATE_WARN", 0.5, minimum=0.0, maximum=1.0),
            cache_hit_rate_fail=f("HEALTH_CACHE_HIT_RATE_FAIL", 0.2, minimum=0.0, maximum=1.0),
            upstream_failure_rate_warn=f(
                "HEALTH_UPSTREAM_FAILURE_RATE_WARN", 0.1, minimum=0.0, maximum=1.0
            ),
            upstream_failure_rate_fail=f(
                "HEALTH_UPSTREAM_FAILURE_RATE_FAIL", 0.3, minimum=0.0, maximum=1.0
            ),
            slow_queries_warn=i("HEALTH_SLOW_QUERIES_WARN", 1, minimum=1),
            slow_queries_fail=i("HEALTH_SLOW_QUERIES_FAIL", 50, minimum=1),
        )
        t.validate()
        return t

    def validate(self) -> None:
        pairs = [
            ("HEALTH_RESPONSE_TIME", self.response_time_warn_s, self.response_time_fail_s),
            ("HEALTH_ERROR_RATE", self.error_rate_warn, self.error_rate_fail),
            (
                "HEALTH_UPSTREAM_FAILURE_RATE",
                self.upstream_failure_rate_warn,
                self.upstream_failure_rate_fail,
            ),
            ("HEALTH_SLOW_QUERIES", self.slow_queries_warn, self.slow_queries_fail),
        ]
        for name, warn, fail in pairs:
            if warn > fail:
                raise ConfigurationError(f"{name}_WARN={warn} must be <= {name}_FAIL={fail}")
        if self.cache_hit_rate_fail > self.cache_hit_rate_warn:
            raise ConfigurationError(
                f"HEALTH_CACHE_HIT_RATE_FAIL={self.cache_hit_rate_fail} must be <= "
                f"HEALTH_CACHE_HIT_RATE_WARN={self.cache_hit_rate_warn} (both are lower bounds)"
            )


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Options of the metrics area (``settings.metrics``)."""

    enabled: bool = True  # METRICS_ENABLED: the layer, the admin routes, the health source
    max_routes: int = 200  # METRICS_MAX_ROUTES: distinct route labels before "__other__"
    route_patterns: tuple[str, ...] = ()  # METRICS_ROUTE_PATTERNS: "/users/{id},/trips/{id}"
    slow_query_threshold_s: float = 1.0  # SLOW_QUERY_THRESHOLD_SECONDS
    flush_interval_s: float = 1.0  # METRICS_FLUSH_INTERVAL_SECONDS: per-worker snapshot file
    retention_s: float = 900.0  # METRICS_WINDOW_RETENTION_SECONDS: longest window kept
    access_log: bool = True  # ACCESS_LOG_ENABLED: JSON lines on logger voyagr_wsgi.access
    request_id: bool = True  # REQUEST_ID_ENABLED: X-Request-ID in environ and on responses
    prometheus: bool = True  # METRICS_PROMETHEUS_ENABLED: /api/production/prometheus
    dashboard: bool = True  # METRICS_DASHBOARD_ENABLED: /api/production/dashboard
    health: HealthThresholds = HealthThresholds()

    @classmethod
    def from_env(cls, env: Env) -> MetricsSettings:
        return cls(
            enabled=env.bool("METRICS_ENABLED", True),
            max_routes=env.int("METRICS_MAX_ROUTES", 200, minimum=1, maximum=100_000),
            route_patterns=check_templates(env.list("METRICS_ROUTE_PATTERNS")),
            slow_query_threshold_s=env.float("SLOW_QUERY_THRESHOLD_SECONDS", 1.0, minimum=0.0),
            flush_interval_s=env.float(
                "METRICS_FLUSH_INTERVAL_SECONDS", 1.0, minimum=0.05, maximum=60.0
            ),
            retention_s=env.float(
                "METRICS_WINDOW_RETENTION_SECONDS", 900.0, minimum=10.0, maximum=86_400.0
            ),
            access_log=env.bool("ACCESS_LOG_ENABLED", True),
            request_id=env.bool("REQUEST_ID_ENABLED", True),
            prometheus=env.bool("METRICS_PROMETHEUS_ENABLED", True),
            dashboard=env.bool("METRICS_DASHBOARD_ENABLED", True),
            health=HealthThresholds.from_env(env),
        )

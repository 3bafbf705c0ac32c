"""The metrics area: what ``METRICS_*`` settings contribute to a stack.

With ``METRICS_ENABLED`` (default on): one :class:`~.registry.Registry` for the stack
(``context.metrics``; the Metrics layer makes it current for the trackers inside a request),
the ``Metrics`` layer, the admin routes
``metrics``, ``prometheus`` and ``dashboard``, the metrics health source and the per-worker
snapshot writer service. The deploy checks: metrics off, bad route patterns, an unwritable
state folder, too many routes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._build import BuildContext, Finding
    from ..settings import Settings

__all__ = ["contribute", "deploy_checks"]


def contribute(settings: Settings, context: BuildContext) -> None:
    """Register the registry, the layer, admin routes, health source and snapshot writer."""
    options = settings.metrics
    if not options.enabled:
        return
    from .endpoints import admin_routes
    from .health import HealthSource
    from .layer import Metrics
    from .multiprocess import SnapshotWriter
    from .reader import MetricsReader
    from .registry import Registry

    registry = Registry(
        max_routes=options.max_routes,
        slow_query_threshold_s=options.slow_query_threshold_s,
        state_dir=settings.state_dir,
        retention_s=options.retention_s,
    )
    registry.counters = context.counters  # the layers' decisions, in the worker snapshots
    context.metrics = registry
    context.metrics_reader = MetricsReader(registry)
    context.health.add(HealthSource(registry, options.health))
    routes = admin_routes(registry, context.health, options, sections=context.metrics_sections)
    context.admin_routes.extend(routes)
    context.services.append(SnapshotWriter(registry, interval_s=options.flush_interval_s))
    context.add_layer(
        Metrics(
            registry=registry,
            routes=options.route_patterns,
            request_id=options.request_id,
            access_log=options.access_log,
        )
    )


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``voyagr-wsgi check`` findings for the metrics area."""
    from .._build import Finding
    from ..errors import ConfigurationError
    from .routes import RoutePatterns

    options = settings.metrics
    if not options.enabled:
        return [
            Finding("WARNING", "voyagr.W401", "METRICS_ENABLED is off: no request figures, "
                    "no metrics health checks, and the alert rules see nothing")
        ]  # fmt: skip
    found: list[Finding] = []
    try:
        RoutePatterns(options.route_patterns, setting="METRICS_ROUTE_PATTERNS")
    except ConfigurationError as exc:
        found.append(Finding("ERROR", "voyagr.E401", str(exc)))
    state = os.path.abspath(settings.state_dir)
    probe = state
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.access(probe, os.W_OK):
        found.append(
            Finding("WARNING", "voyagr.W402", f"VOYAGR_STATE_DIR={settings.state_dir!r} is not "
                    "writable: workers cannot share their metrics, each endpoint shows one "
                    "worker")
        )  # fmt: skip
    if options.max_routes > 2000:
        found.append(
            Finding("WARNING", "voyagr.W403", f"METRICS_MAX_ROUTES={options.max_routes}: every "
                    "route multiplies the series a Prometheus scrape carries; keep it in the "
                    "hundreds")
        )  # fmt: skip
    return found

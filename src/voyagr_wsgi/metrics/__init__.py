"""Metrics: request figures, trackers, health, admin endpoints, merged across workers.

``compose(app, settings)`` calls :func:`setup`, which builds one
:class:`~.registry.Registry` from ``settings.metrics`` for that stack (``stack.metrics``;
there is no process-wide default registry, so two stacks in one process share nothing) and
registers:

- ``context.components["metrics"]``: the registry (the alert rules read it through
  :class:`~.reader.MetricsReader`, merged across workers);
- the admin routes ``metrics`` (JSON), ``prometheus`` (text 0.0.4) and ``dashboard`` (one
  self-contained HTML page) under ``/api/production/``;
- a health source (:mod:`.health`) and a per-worker :class:`~.multiprocess.SnapshotWriter`
  service that flushes ``<state_dir>/metrics/<pid>.json`` every second.

App code::

    from voyagr_wsgi.metrics import track_upstream, track_query, lru_cache_stats
    with track_upstream("osrm"):              # in a view: the serving stack's registry
        route = osrm.route(a, b)
    lru_cache_stats("routes", plan_route, registry=application.metrics)  # outside a request

Inside a request the trackers find the registry of the stack serving it: the Metrics layer
makes it current (a ``ContextVar``, compared and set only when it changes: 30 to 45 ns per
request, see :mod:`.context`). Outside a request pass ``registry=`` or use
``with use_registry(application.metrics):``; a tracker with no registry records nothing and
warns :class:`MetricsWarning`.

Modules, by role (the way prometheus_client keeps ``metrics.py`` apart from
``exposition.py``), each importing only from the rows before it:

1. the snapshot (:mod:`.snapshot`): the typed figures, named fields (``row.errors``,
   ``cache.hits``), and their JSON form; imports nothing of the area;
2. the data model: :mod:`.families` (bounds, label caps; caches, upstreams, queries,
   exceptions), :mod:`.series` (the HTTP series), :mod:`.registry` (the :class:`Registry`
   that records, under one lock, and returns a :class:`~.snapshot.Snapshot`);
3. the writers: :mod:`.context` (the current request's registry), :mod:`.trackers`,
   :mod:`.layer` (the WSGI layer), :mod:`.routes`, :mod:`.accesslog`;
4. the readers: :mod:`.merge`, :mod:`.views` (JSON and windows), :mod:`.multiprocess`
   (per-worker files), :mod:`.reader` (merged, windowed: what the alert rules poll),
   :mod:`.prometheus`, :mod:`.health`;
5. the endpoints: :mod:`.endpoints` (admin routes), and this module's :func:`setup`.

``snapshot <- model <- writers, readers <- endpoints``: the model never imports a reader
(its snapshot type sits below it, as prometheus_client's ``Metric`` sits below
``metrics.py``), and readers never import the layer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .context import MetricsWarning, current_registry, use_registry
from .registry import Registry
from .trackers import (
    CacheStats,
    cache_stats,
    cachetools_stats,
    connect,
    lru_cache_stats,
    track_query,
    track_upstream,
)

if TYPE_CHECKING:
    from ..check import Finding
    from ..compose import BuildContext
    from ..settings import Settings

__all__ = [
    "CacheStats",
    "MetricsWarning",
    "Registry",
    "cache_stats",
    "cachetools_stats",
    "connect",
    "current_registry",
    "deploy_checks",
    "lru_cache_stats",
    "setup",
    "track_query",
    "track_upstream",
    "use_registry",
]


def setup(settings: Settings, context: BuildContext) -> None:
    """Register the registry, admin routes, health source and snapshot writer."""
    options = settings.metrics
    if not options.enabled:
        return
    from .endpoints import admin_routes
    from .health import HealthSource
    from .multiprocess import SnapshotWriter

    registry = Registry(
        max_routes=options.max_routes,
        slow_query_threshold_s=options.slow_query_threshold_s,
        state_dir=settings.state_dir,
        retention_s=options.retention_s,
    )
    context.components["metrics"] = registry
    context.health.add(HealthSource(registry, options.health))
    routes = admin_routes(registry, context.health, options, sections=context.metrics_sections)
    context.admin_routes.extend(routes)
    context.services.append(SnapshotWriter(registry, interval_s=options.flush_interval_s))


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``voyagr-wsgi check`` findings for the metrics area."""
    from ..check import Finding
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

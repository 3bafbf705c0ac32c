"""Metrics: request figures, trackers, health, admin endpoints, merged across workers.

``compose(app, settings)`` runs :func:`.area.contribute`, which builds one
:class:`~.registry.Registry` from ``settings.metrics`` for that stack (``stack.metrics``;
there is no process-wide default registry, so two stacks in one process share nothing) and
registers:

- ``context.metrics`` (``stack.components["metrics"]``): the registry (the alert rules read it
  through
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
3. the writers: :mod:`.context` (the current request's registry), :mod:`.trackers` (with
   :mod:`.sizing`, the cache memory estimate),
   :mod:`.layer` (the WSGI layer), :mod:`.routes`, :mod:`.accesslog`;
4. the readers: :mod:`.merge`, :mod:`.views` (JSON and windows), :mod:`.multiprocess`
   (per-worker files), :mod:`.reader` (merged, windowed: what the alert rules poll),
   :mod:`.prometheus`, :mod:`.health`;
5. the endpoints: :mod:`.endpoints` (admin routes), and :mod:`.area` (what the settings
   contribute to a stack, the deploy checks).

The names below load lazily: importing this package loads none of its modules.

``snapshot <- model <- writers, readers <- endpoints``: the model never imports a reader
(its snapshot type sits below it, as prometheus_client's ``Metric`` sits below
``metrics.py``), and readers never import the layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    from .area import deploy_checks as deploy_checks
    from .context import MetricsWarning as MetricsWarning
    from .context import current_registry as current_registry
    from .context import use_registry as use_registry
    from .registry import Registry as Registry
    from .trackers import CacheStats as CacheStats
    from .trackers import cache_stats as cache_stats
    from .trackers import cachetools_stats as cachetools_stats
    from .trackers import connect as connect
    from .trackers import lru_cache_stats as lru_cache_stats
    from .trackers import track_query as track_query
    from .trackers import track_upstream as track_upstream

_WHERE = {
    "CacheStats": ".trackers",
    "MetricsWarning": ".context",
    "Registry": ".registry",
    "cache_stats": ".trackers",
    "cachetools_stats": ".trackers",
    "connect": ".trackers",
    "current_registry": ".context",
    "deploy_checks": ".area",
    "lru_cache_stats": ".trackers",
    "track_query": ".trackers",
    "track_upstream": ".trackers",
    "use_registry": ".context",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy(__name__, _WHERE)

"""Metrics: request figures, trackers, health, admin endpoints, merged across workers.

``compose(app, settings)`` runs :func:`.area.contribute`, which builds one
:class:`~.registry.Registry` from ``settings.metrics``, installs it as the process default
(so ``track_upstream("osrm")`` in app code lands in the same place as the layer's figures)
and registers:

- ``context.metrics`` (``stack.components["metrics"]``): the registry
  (``registry.window_snapshot(60)`` is what the alert rules read, merged across workers);
- the admin routes ``metrics`` (JSON), ``metrics/history`` (one point per time slot over
  the retention), ``prometheus`` (text 0.0.4) and ``dashboard`` (one self-contained HTML
  page) under ``/api/production/``;
- a health source (:mod:`.health`) and a per-worker :class:`~.multiprocess.SnapshotWriter`
  service that flushes ``<state_dir>/metrics/<pid>.json`` every second.

App code::

    from voyagr_wsgi.metrics import track_upstream, track_query, lru_cache_stats
    with track_upstream("osrm"):
        route = osrm.route(a, b)

Modules: :mod:`.registry` (data model), :mod:`.layer` (the WSGI layer), :mod:`.routes`
(route templates, Flask/Django helpers), :mod:`.trackers` (upstreams, caches, queries),
:mod:`.multiprocess` (per-worker files), :mod:`.merge` (summing snapshots), :mod:`.views`
(JSON and windows), :mod:`.prometheus`, :mod:`.endpoints`, :mod:`.health`, :mod:`.accesslog`,
:mod:`.area` (what the settings contribute, the deploy checks). The names below load lazily:
importing this package loads none of its modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .area import deploy_checks as deploy_checks
    from .registry import Registry as Registry
    from .registry import default_registry as default_registry
    from .registry import set_default_registry as set_default_registry
    from .trackers import CacheStats as CacheStats
    from .trackers import cache_stats as cache_stats
    from .trackers import cachetools_stats as cachetools_stats
    from .trackers import connect as connect
    from .trackers import lru_cache_stats as lru_cache_stats
    from .trackers import track_query as track_query
    from .trackers import track_upstream as track_upstream

_WHERE = {
    "CacheStats": ".trackers",
    "Registry": ".registry",
    "cache_stats": ".trackers",
    "cachetools_stats": ".trackers",
    "connect": ".trackers",
    "default_registry": ".registry",
    "deploy_checks": ".area",
    "lru_cache_stats": ".trackers",
    "set_default_registry": ".registry",
    "track_query": ".trackers",
    "track_upstream": ".trackers",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

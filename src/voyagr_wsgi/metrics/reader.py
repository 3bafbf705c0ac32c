"""Reading a registry the way the endpoints and the alert rules see it: merged, windowed.

A :class:`~.registry.Registry` only records. What every reader wants is the figures of the
whole server: :func:`merged` is this process's snapshot alone, or, once its
:class:`~.multiprocess.SnapshotWriter` runs (``registry.shared``), every worker's file
merged (:func:`.multiprocess.read_merged`). :func:`window` turns that into the last
``window_s`` seconds (:func:`.views.window`'s documented shape).

:class:`MetricsReader` is the object the alert service polls
(``AlertService(settings, metrics=MetricsReader(registry))``)::

    reader = MetricsReader(stack.metrics)
    reader.window_snapshot(60)["requests"]["error_rate"]
"""

from __future__ import annotations

from typing import Any

from .registry import Registry
from .snapshot import Snapshot
from .views import window as _window

__all__ = ["MetricsReader", "merged", "window"]


def merged(registry: Registry) -> Snapshot:
    """This process plus every other worker (when sharing is on), merged."""
    if not (registry.shared and registry.state_dir):
        return registry.snapshot()
    from .multiprocess import read_merged

    return read_merged(registry)


def window(registry: Registry, window_s: float) -> dict[str, Any]:
    """Figures of the last ``window_s`` seconds, merged across workers (for alerts)."""
    return _window(merged(registry), window_s, registry.now(), registry.slot_s)


class MetricsReader:
    """A registry's merged figures for the alert rules (their ``MetricsSource``)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def merged(self) -> Snapshot:
        return merged(self.registry)

    def window_snapshot(self, window_s: float) -> dict[str, Any]:
        return window(self.registry, window_s)

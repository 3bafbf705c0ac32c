"""What the areas share while ``compose(app, settings)`` builds a stack, and what an area is.

A low module: layers, areas and ``compose`` import it; it imports none of them at run time.

An *area* (the request path, rate limiting, metrics, backups, alerts) is a module with two
functions, its one declaration of what it contributes:

- ``contribute(settings, context)``: from the settings, add layers (``context.add_layer``),
  services, admin routes, health sources and metrics sections to the :class:`BuildContext`,
  importing the area's heavy modules only when the settings turn it on;
- ``deploy_checks(settings, environ)``: the ``voyagr-wsgi check`` findings for the area.

``compose`` runs the areas in :data:`voyagr_wsgi.compose.AREAS` order, then puts the layers in
its default order. Objects one area hands to another are typed attributes of the context
(``context.metrics`` is the registry the alert rules read), never a string-keyed lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .counters import Counters
from .health import Health

if TYPE_CHECKING:
    from ._layer import Layer
    from .admin import AdminRoute
    from .alerts.evaluator import AlertService
    from .backups.manager import BackupManager
    from .metrics.reader import MetricsReader
    from .metrics.registry import Registry
    from .ratelimit.store import Store
    from .services import Service
    from .settings import Settings

__all__ = ["Area", "BuildContext", "Finding", "MetricsSection"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One ``voyagr-wsgi check`` finding: ``ERROR`` for a setting that cannot work,
    ``WARNING`` for a risky one."""

    level: Literal["ERROR", "WARNING"]
    code: str  # e.g. "voyagr.W001"
    message: str

    def __str__(self) -> str:
        return f"{self.level} {self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class MetricsSection:
    """Figures another area adds to the metrics endpoints (alert deliveries, say).

    ``json()`` becomes ``doc[name]`` in ``GET /api/production/metrics``; ``prometheus()``
    returns complete text-format families appended to ``GET /api/production/prometheus``.
    Both are called per scrape, never per request.
    """

    name: str
    json: Callable[[], Any]
    prometheus: Callable[[], str]


@dataclass
class BuildContext:
    """The pieces of one stack while the areas build it (see the module docstring)."""

    settings: Settings
    layers: list[Layer] = field(default_factory=list)
    admin_routes: list[AdminRoute] = field(default_factory=list)
    health: Health = field(default_factory=Health)
    services: list[Service] = field(default_factory=list)
    metrics_sections: list[MetricsSection] = field(default_factory=list)
    #: the metrics registry, when the metrics area is on
    metrics: Registry | None = None
    #: its figures merged across workers: what the alert rules read
    metrics_reader: MetricsReader | None = None
    #: the backup manager, when backups are on (read by the alert rules and the CLI)
    backups: BackupManager | None = None
    #: the alert service, when alerts are on
    alerts: AlertService | None = None
    #: the rate-limit store, when rate limiting is on
    ratelimit: Store | None = None
    #: the decision counters every layer of the stack counts into (the metrics area
    #: exposes them: ``voyagr_ratelimit_decisions_total``, ``voyagr_rejections_total``)
    counters: Counters = field(default_factory=Counters)

    def add_layer(self, layer: Layer) -> None:
        """An unbound layer for the stack; ``compose`` puts it in its default place."""
        self.layers.append(layer)

    def components(self) -> dict[str, Any]:
        """The shared objects that exist, by area name (``Stack.components``)."""
        found = {
            "metrics": self.metrics,
            "backups": self.backups,
            "alerts": self.alerts,
            "ratelimit": self.ratelimit,
        }
        return {name: value for name, value in found.items() if value is not None}


class Area(Protocol):
    """An area module (see the module docstring)."""

    def contribute(self, settings: Settings, context: BuildContext) -> None: ...

    def deploy_checks(
        self, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> list[Finding]: ...

"""The areas a stack is built from, and the one function that builds from settings.

Each area module declares once what it contributes from the settings (see
:mod:`voyagr_wsgi._build`): :mod:`voyagr_wsgi.request_path`, :mod:`voyagr_wsgi.metrics.area`,
:mod:`voyagr_wsgi.backups.area`, :mod:`voyagr_wsgi.alerts.area`,
:mod:`voyagr_wsgi.ratelimit.area`. ``compose(app, settings)`` and ``voyagr-wsgi check`` read
:data:`AREAS`; an area module is light, and loads its heavy modules only when the settings
turn the area on.
"""

from __future__ import annotations

from . import request_path
from ._build import Area, BuildContext
from .alerts import area as alerts_area
from .backups import area as backups_area
from .compose import DEFAULT_ORDER
from .errors import ConfigurationError
from .metrics import area as metrics_area
from .ratelimit import area as ratelimit_area
from .settings import Settings

__all__ = ["AREAS", "build_context"]

#: the areas, in the order they contribute: metrics and backups before alerts (the rules
#: read the registry and the backup manager)
AREAS: tuple[Area, ...] = (request_path, metrics_area, backups_area, alerts_area, ratelimit_area)


def build_context(settings: Settings) -> BuildContext:
    """What every area contributes for ``settings``, before anything wraps an app: the
    layers unbound and in :data:`~voyagr_wsgi.compose.DEFAULT_ORDER`, the ``Admin`` layer
    last with every route the areas registered."""
    context = BuildContext(settings)
    for area in AREAS:
        area.contribute(settings, context)
    if context.admin_routes:
        from .admin import Admin

        context.add_layer(
            Admin(
                token=settings.admin_token,
                routes=tuple(context.admin_routes),
                counters=context.counters,
            )
        )
    rank = {name: index for index, name in enumerate(DEFAULT_ORDER)}
    for layer in context.layers:
        if type(layer).__name__ not in rank:
            raise ConfigurationError(f"compose: no place in DEFAULT_ORDER for {layer!r}")
    context.layers.sort(key=lambda layer: rank[type(layer).__name__])
    return context

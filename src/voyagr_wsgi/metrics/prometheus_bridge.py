"""voyagr's metrics in your ``prometheus_client`` registry (the ``prometheus`` extra).

For an app that already serves ``prometheus_client`` metrics on its own ``/metrics``: register
a :class:`PrometheusBridge` and the same scrape also carries voyagr's families (the ones
``/api/production/prometheus`` serves, see :mod:`.prometheus`), merged across workers::

    from prometheus_client import REGISTRY
    from voyagr_wsgi.metrics.prometheus_bridge import PrometheusBridge
    REGISTRY.register(PrometheusBridge(application.metrics))  # the stack's Registry

It is :class:`~.prometheus.VoyagrCollector` (built from the same family list as voyagr's own
exposition, so the two cannot drift apart), checking for the extra when it is built: without
``pip install 'voyagr-wsgi[prometheus]'`` the constructor raises ``ConfigurationError``.
"""

from __future__ import annotations

from .._extras import require
from .prometheus import VoyagrCollector
from .registry import Registry

__all__ = ["PrometheusBridge"]


class PrometheusBridge(VoyagrCollector):
    """A ``prometheus_client`` custom collector yielding voyagr's metric families."""

    def __init__(self, registry: Registry) -> None:
        require("prometheus_client", "PrometheusBridge", extra="prometheus")
        super().__init__(registry)

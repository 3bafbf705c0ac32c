"""voyagr's metrics in your ``prometheus_client`` registry (the ``prometheus`` extra).

For an app that already serves ``prometheus_client`` metrics on its own ``/metrics``: register
a :class:`PrometheusBridge` and the same scrape also carries voyagr's families (the ones
``/api/production/prometheus`` serves, see :mod:`.prometheus`), merged across workers::

    from prometheus_client import REGISTRY
    from voyagr_wsgi.metrics.prometheus_bridge import PrometheusBridge
    REGISTRY.register(PrometheusBridge(registry))  # voyagr's metrics Registry

Each collection renders voyagr's text exposition and hands it to prometheus_client's own
parser, so the two expositions cannot drift apart. Needs ``pip install
'voyagr-wsgi[prometheus]'``; without it the constructor raises ``ConfigurationError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import ConfigurationError
from .prometheus import render
from .registry import Registry

__all__ = ["PrometheusBridge"]


class PrometheusBridge:
    """A ``prometheus_client`` custom collector yielding voyagr's metric families."""

    def __init__(self, registry: Registry) -> None:
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError as exc:
            raise ConfigurationError(
                "PrometheusBridge needs prometheus_client: pip install 'voyagr-wsgi[prometheus]'"
            ) from exc
        self.registry = registry
        self._parse: Callable[[str], Iterable[Any]] = text_string_to_metric_families

    def describe(self) -> list[Any]:
        return []  # nothing up front: the families depend on what was recorded

    def collect(self) -> Iterator[Any]:
        registry = self.registry
        yield from self._parse(render(registry.merged(), registry.now()))

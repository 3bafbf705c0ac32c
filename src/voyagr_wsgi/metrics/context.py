"""The registry of the current request: how ``track_upstream("osrm")`` finds its stack.

There is no process-wide default registry: each stack owns its :class:`~.registry.Registry`
(``stack.metrics``), and two stacks in one process never share figures. The
:class:`~.layer.Metrics` layer makes its registry the *current* one (a
:class:`contextvars.ContextVar`) when a request enters it, so the trackers in app code need
no argument inside a request, including in a body iterated after the view returned::

    with track_upstream("osrm"):              # in a view: the serving stack's registry
        ...

Outside a request (start-up code, a background thread, a script) there is no current
registry: pass one, or make one current for a block::

    lru_cache_stats("routes", plan_route, registry=application.metrics)
    with use_registry(application.metrics):
        warm_up()                             # trackers record into application.metrics

Cost and its trade-off: the layer *compares* the current value and sets it only when it
differs, and never resets it. On CPython 3.11 the compare alone costs about 25 ns (a set
about 60 ns, a set + reset about 200 ns); the Metrics layer with it measured 30 to 45 ns
slower per request than without it (median and best of 18 alternating runs). A thread
that served a request keeps that stack's registry current until another stack's request
enters, so code run later on that thread outside any request records there; new threads
start with none (Python < 3.14 gives every thread an empty context). A tracker that finds
no registry records nothing and warns :class:`MetricsWarning`; a cache poller
(``lru_cache_stats``, ``cachetools_stats``) raises
:class:`~voyagr_wsgi.errors.ConfigurationError`, since it must be attached to a registry.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ..errors import VoyagrWarning

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["MetricsWarning", "current_registry", "use_registry"]

#: the registry of the request being served (set by the Metrics layer, never reset)
CURRENT: ContextVar[Registry | None] = ContextVar("voyagr_wsgi.metrics.current", default=None)


class MetricsWarning(VoyagrWarning):
    """A figure was not recorded: no registry given and none current."""


def current_registry() -> Registry | None:
    """The registry of the request being served in this context (None outside requests)."""
    return CURRENT.get()


@contextlib.contextmanager
def use_registry(registry: Registry) -> Iterator[Registry]:
    """Make ``registry`` current for the block (then restore the previous one)."""
    token = CURRENT.set(registry)
    try:
        yield registry
    finally:
        CURRENT.reset(token)

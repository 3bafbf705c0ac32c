"""``compose``: the one place that knows the default order of the layers.

Two ways to build a stack::

    from voyagr_wsgi import compose, Settings
    application = compose(app, Settings.from_env())        # everything the settings ask for

    from voyagr_wsgi.layers import ProxyTrust, SecurityHeaders, HTTPSRedirect
    application = compose(app, ProxyTrust(trusted=["10.0.0.0/8"]), HTTPSRedirect(),
                          SecurityHeaders())               # first listed = outermost

The default order, outermost first (see :data:`DEFAULT_ORDER`; it applies to
``compose(app, settings)``, while explicit layers keep the order given):

1. ``ProxyTrust``: resolve client IP, scheme and host once;
2. ``Metrics``: so 4xx answers from later layers are counted, timed until ``close()``;
3. ``Probe``: ``/api/production/health``, ``livez``, ``readyz`` before host check and redirect;
4. ``HostCheck``: 400 for a Host outside ``ALLOWED_HOSTS``;
5. ``HTTPSRedirect``: 301 (GET/HEAD) / 308 to the same validated host;
6. ``SecurityHeaders``: HSTS on HTTPS only, CSP, the OWASP set, cookie flags;
7. ``CrossOriginProtection``: stateless CSRF for unsafe methods, 403;
8. ``RateLimit``: GCRA per client, 429 with ``Retry-After`` and ``RateLimit`` fields;
9. ``Admin``: the endpoints under ``/api/production/``;
10. the app.

With settings, each area in :data:`voyagr_wsgi.areas.AREAS` (the request path, metrics,
backups, alerts, rate limiting) adds what the settings turn on (layers, services, admin routes,
health sources, metrics sections) to one :class:`~voyagr_wsgi._build.BuildContext`; an area
that is off loads none of its modules. Every layer is built once. The result is a
:class:`Stack`: a WSGI callable with ``start()`` / ``stop(timeout)`` that run the background
services (backup scheduler, alert evaluation and dispatch) through a
:class:`~voyagr_wsgi.services.Supervisor`.
Nothing starts until ``start()`` is called.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._layer import Layer, direct_call
from ._wsgi import Environ, StartResponse, WSGIApplication
from .errors import ConfigurationError

if TYPE_CHECKING:
    from ._build import BuildContext
    from .services import LeaseFactory, Service

__all__ = ["DEFAULT_ORDER", "Stack", "compose"]

#: the layers ``compose(app, settings)`` builds, outermost first (names in voyagr_wsgi.layers)
DEFAULT_ORDER: tuple[str, ...] = (
    "ProxyTrust",
    "Metrics",
    "Probe",
    "HostCheck",
    "HTTPSRedirect",
    "SecurityHeaders",
    "CrossOriginProtection",
    "RateLimit",
    "Admin",
)

class Stack:
    """A composed WSGI application plus the services it runs."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        layers: Iterable[Any] = (),
        services: Iterable[Service] = (),
        context: BuildContext | None = None,
        state_dir: str = ".voyagr",
        lease: LeaseFactory | None = None,
    ) -> None:
        from .health import Health
        from .services import Supervisor

        self.app = app
        self._next = direct_call(app)
        self.layers = tuple(layers)
        #: the shared objects by area (``"metrics"``: the registry, ``"backups"``: the
        #: backup manager, ``"alerts"``, ``"ratelimit"``: the store), those that exist
        self.components: dict[str, Any] = context.components() if context else {}
        self.health = context.health if context else Health()
        self.supervisor = Supervisor(
            services, lock_path=os.path.join(state_dir, "services.lock"), lease=lease
        )
        if lease is not None:
            from ._build import MetricsSection

            self.health.add(self.supervisor.health_checks)
            if context is not None:  # the metrics endpoints read the sections per request
                context.metrics_sections.append(
                    MetricsSection(
                        "lease",
                        json=self.supervisor.lease_json,
                        prometheus=self.supervisor.lease_prometheus,
                    )
                )

    @property
    def services(self) -> list[Service]:
        return self.supervisor.services

    @property
    def metrics(self) -> Any:
        """This stack's metrics registry (None without a Metrics layer): pass it as
        ``registry=`` to trackers used outside a request."""
        registry = self.components.get("metrics")
        if registry is None:
            registry = next((getattr(x, "registry", None) for x in self.layers
                             if type(x).__name__ == "Metrics"), None)  # fmt: skip
        return registry

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # one Python frame over the outermost layer (~50 ns); it calls that layer's bound
        # __call__, skipping the slower call-an-instance slot
        return self._next(environ, start_response)

    def start(self) -> None:
        """Start the background services (singletons only in the elected process)."""
        self.supervisor.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the services, letting each finish its work within ``timeout`` seconds."""
        self.supervisor.stop(timeout)

    def state(self) -> dict[str, Any]:
        return self.supervisor.state()

    def layer(self, name: str) -> Any:
        """The first layer whose class is called ``name`` (for tests and introspection)."""
        for layer in self.layers:
            if type(layer).__name__ == name:
                return layer
        raise KeyError(name)


def compose(app: WSGIApplication, *parts: Any) -> Stack:
    """Wrap ``app`` in layers: ``compose(app, settings)`` or ``compose(app, layer, ...)``.

    With explicit layers the first listed is the outermost. A part may be an unbound
    :class:`~voyagr_wsgi._layer.Layer` or any ``callable(app) -> app`` (a third-party
    middleware factory such as ``lambda a: ProxyFix(a)``).
    """
    from .settings import Settings

    if len(parts) == 1 and isinstance(parts[0], Settings):
        from .areas import build_context

        settings = parts[0]
        context = build_context(settings)
        lease = None
        if settings.services_lease_url:
            from .lease import lease_factory

            lease = lease_factory(settings.services_lease_url, ttl_s=settings.services_lease_s)
        return _wrap(
            app, context.layers, context=context, state_dir=settings.state_dir, lease=lease
        )
    if any(isinstance(p, Settings) for p in parts):
        raise ConfigurationError("compose: pass either one Settings or layers, not both")
    return _wrap(app, parts)


def _wrap(
    app: WSGIApplication,
    parts: Iterable[Any],
    *,
    context: BuildContext | None = None,
    state_dir: str = ".voyagr",
    lease: LeaseFactory | None = None,
) -> Stack:
    built: list[Any] = []
    wrapped: Any = app
    for part in reversed(tuple(parts)):
        if isinstance(part, Layer):
            wrapped = part.bind(wrapped)
        elif callable(part):
            wrapped = part(wrapped)
        else:
            raise ConfigurationError(f"compose: {part!r} is neither a layer nor a callable")
        built.append(wrapped)
    built.reverse()
    services = list(context.services) if context else []
    services += [s for layer in built for s in getattr(layer, "services", ())]
    return Stack(
        wrapped,
        layers=built,
        services=services,
        context=context,
        state_dir=state_dir,
        lease=lease,
    )

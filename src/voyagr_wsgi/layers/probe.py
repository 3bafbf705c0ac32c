"""Probe: health, liveness and readiness endpoints answered before host check and redirect.

Load balancers and orchestrators probe over plain HTTP with the instance's private IP as the
Host (courtlistener#2059, EvalAI#5208, flask-sslify#25). ``compose`` therefore puts this
layer *before* :class:`HostCheck` and :class:`HTTPSRedirect`, so those probes get their
answer instead of a 400 or a redirect::

    from voyagr_wsgi.layers import Probe
    application = Probe(app, health=health, token=Secret(os.environ["VOYAGR_ADMIN_TOKEN"]))

Endpoints (under ``prefix``, default ``/api/production/``), for GET and HEAD only (other
methods get a ``405`` problem, :mod:`voyagr_wsgi.problem`, with ``Allow: GET, HEAD``); every
answer is JSON with ``Cache-Control: no-store``:

- ``health``: ``{"status": "pass"|"warn"|"fail"}`` from ``health.evaluate()``; ``200`` for
  pass and warn, ``503`` for fail. A request the admin rule authorizes
  (:func:`voyagr_wsgi.admin.is_authorized`: the bearer token, or a loopback client when no
  token is set) gets the full ``application/health+json`` document
  (draft-inadarei-api-health-check-06) instead;
- ``livez``: the process answers, so always ``200 {"status":"pass"}``; it runs no check;
- ``readyz``: ``503 {"status": "fail"}`` only when a *readiness* check fails (a dependency
  the instance cannot serve without, e.g. a fail-closed rate-limit store that is down);
  otherwise ``200`` with ``pass``, or ``warn`` when any check is not passing: a failing
  observation of traffic (error rate, p95, an upstream) is shared by every instance, and
  failing readiness on it would pull them all from the load balancer at once.

Only these exact paths are answered (no prefixes, no trailing-slash variants), so the hole
this opens in host checking and HTTPS enforcement is three read-only URLs. They are matched
against the normalised ``PATH_INFO`` (:func:`voyagr_wsgi.request.app_path`: ``//`` collapsed,
dot segments resolved; below the mount point, like the app's own routes). Everything else
passes to the app untouched: one dict lookup on ``PATH_INFO`` per request, plus one
substring check when it is not a probe (the prefix's last segment: normalising keeps or drops
whole segments, so a path without it cannot normalise to an endpoint).
``compose(app, settings)`` builds it with the stack's :class:`~voyagr_wsgi.health.Health`
(every area's checks) and ``VOYAGR_ADMIN_TOKEN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._layer import Layer
from .._wsgi import Environ, Headers, StartResponse, WSGIApplication
from ..admin import PREFIX, is_authorized
from ..errors import ConfigurationError
from ..health import Health, HealthReport, Status
from ..problem import prepare, prepare_json
from ..request import normalize_path, prefix_needle
from ..secret import Secret, bearer_token

__all__ = ["Probe"]

_OK = "200 OK"
#: the endpoints' names, each a route's last segment
_NAMES = ("health", "livez", "readyz")
_FAIL = "503 Service Unavailable"
_Prepared = tuple[str, Headers, bytes]


_MINIMAL: dict[str, _Prepared] = {
    "pass": prepare_json(_OK, {"status": "pass"}),
    "warn": prepare_json(_OK, {"status": "warn"}),
    "fail": prepare_json(_FAIL, {"status": "fail"}),
}
_NOT_ALLOWED: _Prepared = prepare(
    "method-not-allowed", "probes answer GET and HEAD", headers=[("Allow", "GET, HEAD")]
)


class Probe(Layer):
    """Answer ``health``, ``livez`` and ``readyz`` under ``prefix``; pass the rest on."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        health: Health | None = None,
        token: Secret | None = None,
        prefix: str = PREFIX,
    ) -> None:
        self._init(app, {"health": health, "token": token, "prefix": prefix})
        if not isinstance(prefix, str) or not prefix.startswith("/") or not prefix.endswith("/"):
            raise ConfigurationError(f"Probe prefix={prefix!r} must start and end with '/'")
        self.health = health
        self.token = bearer_token(token, "VOYAGR_ADMIN_TOKEN (Probe token=)")
        self.prefix = prefix
        self._routes = {prefix + name: name for name in _NAMES}
        self._needle = prefix_needle(prefix)  # in every spelling of an endpoint's path

    def _report(self) -> HealthReport:
        return self.health.evaluate() if self.health is not None else HealthReport("pass")

    def explain(self, environ: Environ) -> dict[str, Any]:
        """Whether a probe endpoint answers the request: ``__call__`` run detached, the health
        checks not run (a status that depends on them says so)."""
        asked: list[bool] = []

        def report() -> HealthReport:
            asked.append(True)
            return HealthReport("pass")

        seen, status, _ = self._run_detached(dict(environ), _report=report)
        if seen is not None:
            return {"outcome": "passes"}
        if asked:
            status = "from the health checks (not run)"
        return {"outcome": "answers", "endpoint": environ.get("PATH_INFO", ""), "status": status}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        route = self._routes.get(path)
        if route is None:
            if self._needle not in path:  # however spelled, a path under the prefix has it
                nxt = self._next
                return nxt(environ, start_response)
            route = self._routes.get(normalize_path(path))
            if route is None:
                nxt = self._next
                return nxt(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            answer = _NOT_ALLOWED
        elif route == "livez":
            answer = _MINIMAL["pass"]
        elif route == "readyz":
            answer = _MINIMAL[self._report().readiness]
        else:
            report = self._report()
            if route == "health" and is_authorized(environ, self.token):
                answer = prepare_json(
                    report.http_status, report.document(), content_type="application/health+json"
                )
            else:
                status: Status = report.status
                answer = _MINIMAL[status]
        status_line, headers, body = answer
        start_response(status_line, list(headers))
        return [] if method == "HEAD" else [body]

"""Admin endpoints under ``/api/production/``, behind one token check.

Use when you want the operational endpoints (metrics JSON, Prometheus exposition, dashboard,
full health, backups) served by the app's own process::

    from voyagr_wsgi.admin import Admin, AdminRoute
    application = Admin(app, token=Secret(os.environ["VOYAGR_ADMIN_TOKEN"]), routes=[...])

``compose(app, settings)`` builds it with the routes every enabled area registers.

Access rule (deny by default):

- with a token configured, a request must carry ``Authorization: Bearer <token>``; it is
  compared with :func:`hmac.compare_digest` (constant time). Otherwise ``401`` with
  ``WWW-Authenticate: Bearer``;
- with no token configured, only loopback clients (the *trusted* client IP resolved by
  ProxyTrust, never a forwarded header) are served; everyone else gets ``404``, as if the
  endpoints did not exist.

A route marked ``public_page=True`` serves a page that holds no data (the dashboard's HTML, which
then fetches the JSON with the token): with a token configured it is served without one, so
a browser can open it and hand the token to its script through the URL fragment; with no
token configured the loopback rule still applies.

Paths under the prefix that no route claims pass through to the app. A route's handler gets
the environ and the path parameters (``backup/restore/{name}`` gives ``{"name": ...}``; the
parameter never contains ``/``) and returns ``(status, headers, body)``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._layer import Layer
from ._wsgi import Environ, Headers, StartResponse, WSGIApplication, simple_response
from .request import client_ip, normalize_path
from .secret import Secret

__all__ = ["PREFIX", "Admin", "AdminRoute", "Response", "is_authorized", "json_body"]

PREFIX = "/api/production/"

Response = tuple[str, Headers, Iterable[bytes]]
Handler = Callable[[Environ, Mapping[str, str]], Response]

_JSON = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


def json_body(status: str, payload: Any, *, content_type: str = "application/json") -> Response:
    """A complete JSON response for a handler to return."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers: Headers = [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("Content-Length", str(len(body))),
    ]
    return status, headers, [body]


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """``method`` + a path relative to the prefix (``backups``, ``backup/restore/{name}``)."""

    method: str
    path: str
    handler: Handler
    public_page: bool = False  # a data-free page: served without the token when one is set


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.partition("%")[0]).is_loopback
    except ValueError:
        return False


def is_authorized(environ: Environ, token: Secret | None) -> bool:
    """The admin access rule: a matching bearer token, or a loopback client when none is set."""
    if token is None or not token:
        return _is_loopback(client_ip(environ))
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("latin-1"), token.reveal().encode("latin-1"))


class Admin(Layer):
    """Serve the registered admin routes under ``prefix``; pass everything else on."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        token: Secret | None = None,
        routes: Sequence[AdminRoute] = (),
        prefix: str = PREFIX,
    ) -> None:
        self._init(app, {"token": token, "routes": routes, "prefix": prefix})
        if not prefix.startswith("/") or not prefix.endswith("/"):
            from .errors import ConfigurationError

            raise ConfigurationError(f"Admin prefix={prefix!r} must start and end with '/'")
        self.token = token
        self.prefix = prefix
        self._exact: dict[str, dict[str, AdminRoute]] = {}
        self._patterns: list[tuple[re.Pattern[str], AdminRoute]] = []
        for route in routes:
            if "{" in route.path:
                regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
                self._patterns.append((re.compile(regex + r"\Z"), route))
            else:
                self._exact.setdefault(route.path, {})[route.method] = route

    def _handle(self, route: AdminRoute, environ: Environ, params: dict[str, str]) -> Response:
        """Run the route's handler (where :meth:`explain` stops)."""
        return route.handler(environ, params)

    def _match(self, rel: str) -> tuple[dict[str, AdminRoute], dict[str, str]] | None:
        methods = self._exact.get(rel)
        if methods is not None:
            return methods, {}
        found: dict[str, AdminRoute] = {}
        params: dict[str, str] = {}
        for regex, route in self._patterns:
            m = regex.match(rel)
            if m:
                found[route.method] = route
                params = m.groupdict()
        return (found, params) if found else None

    def explain(self, environ: Environ) -> dict[str, Any]:
        """Whether an admin endpoint answers the request, and whether its handler would run
        (authorized, method allowed): ``__call__`` run detached, the handler not run."""
        reached: list[AdminRoute] = []

        def handle(route: AdminRoute, environ: Environ, params: dict[str, str]) -> Response:
            reached.append(route)
            return "200 OK", [], []

        seen, status, _ = self._run_detached(dict(environ), _handle=handle)
        if seen is not None:
            return {"outcome": "passes"}
        detail: dict[str, Any] = {"endpoint": environ.get("PATH_INFO", "")}
        if reached:
            return {"outcome": "answers", **detail, "authorized": True, "method_allowed": True,
                    "status": "from the handler (not run)"}  # fmt: skip
        refused = status.startswith(("401", "404"))
        detail.update(authorized=not refused, status=status)
        if not refused:
            detail["method_allowed"] = False
        return {"outcome": "answers", **detail}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")  # request.app_path(), inline: //x, /./x are /x
        if "//" in path or "/." in path:
            path = normalize_path(path)
        if not path.startswith(self.prefix):
            return self._next(environ, start_response)
        match = self._match(path[len(self.prefix) :])
        if match is None:
            return self._next(environ, start_response)
        methods, params = match
        method = environ.get("REQUEST_METHOD", "GET")
        route = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
        public_page = route is not None and route.public_page and self.token is not None
        if not public_page and not is_authorized(environ, self.token):
            if self.token is None:
                return simple_response(
                    start_response, "404 Not Found", b'{"error":"not found"}', _JSON
                )
            return simple_response(
                start_response,
                "401 Unauthorized",
                b'{"error":"admin token required"}',
                [*_JSON, ("WWW-Authenticate", 'Bearer realm="voyagr"')],
            )
        if route is None:
            allow = ", ".join(sorted(methods))
            return simple_response(
                start_response,
                "405 Method Not Allowed",
                b'{"error":"method not allowed"}',
                [*_JSON, ("Allow", allow)],
            )
        status, headers, body = self._handle(route, environ, params)
        start_response(status, headers)
        if method == "HEAD":
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return []
        return body

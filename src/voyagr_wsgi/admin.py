"""Admin endpoints under ``/api/production/``, behind one token check.

Use when you want the operational endpoints (metrics JSON, Prometheus exposition, dashboard,
full health, backups) served by the app's own process::

    from voyagr_wsgi.admin import Admin, AdminRoute
    application = Admin(app, token=Secret(os.environ["VOYAGR_ADMIN_TOKEN"]), routes=[...])

``compose(app, settings)`` builds it with the routes every enabled area registers.

Access rule (deny by default):

- with a token configured, a request must carry ``Authorization: Bearer <token>``; the
  bytes are compared with :func:`hmac.compare_digest` (constant time). A header that is not
  ASCII is simply not the token. Otherwise ``401`` with ``WWW-Authenticate: Bearer``.
  The token is checked when the layer is built (:func:`voyagr_wsgi.secret.bearer_token`:
  printable ASCII, at least 16 characters; ``ConfigurationError`` naming
  ``VOYAGR_ADMIN_TOKEN`` otherwise);
- with no token configured, only loopback clients (the *trusted* client IP resolved by
  ProxyTrust, never a forwarded header; IPv4-mapped ``::ffff:127.0.0.1`` counts) are served
  the read-only endpoints (GET, HEAD); everyone else gets ``404``, as if the endpoints did not
  exist. A state change (any other method: backup create and restore, alert mute) is refused
  with ``403`` (``admin-token-not-configured``) whoever asks: behind a reverse proxy on the
  same host every request comes from loopback, so without a token anyone could restore.

A route marked ``public_page=True`` serves a page that holds no data (the dashboard's HTML, which
then fetches the JSON with the token): with a token configured it is served without one, so
a browser can open it and hand the token to its script through the URL fragment; with no
token configured the loopback rule still applies.

Paths under the prefix that no route claims pass through to the app. A route's handler gets
the environ and the path parameters (``backup/restore/{name}`` gives ``{"name": ...}``; the
parameter never contains ``/``) and returns ``(status, headers, body)``, usually
:func:`voyagr_wsgi.problem.json_response`. A handler that reads a body uses
:mod:`voyagr_wsgi.request_body` (capped, depth-safe JSON; typed, range-checked fields); a
client mistake is raised as :class:`~voyagr_wsgi.problem.ProblemError` and answered as that
problem (400 / 413 / 415 / 422), never a 500. A request whose ``Content-Length`` is over
``max_body`` (64 KiB) gets ``413`` before any handler runs. Every answer the layer makes
itself is an RFC 9457 problem (:mod:`voyagr_wsgi.problem`).

Routing and body reading use werkzeug (``werkzeug.routing.Map`` gives the ``405`` with its
``Allow`` list; ``werkzeug.wrappers.Request`` reads the body with ``max_content_length``). It
is imported on the first request under the prefix, so building the stack and serving the
app never load it; a request outside the prefix costs one substring check (the prefix's
last segment; normalising keeps or drops whole segments, so a path without it is outside).

Each refusal counts into ``counters=`` (:class:`voyagr_wsgi.counters.Counters`) as
``admin``/``unauthorized``, ``not-loopback``, ``method-not-allowed``,
``admin-token-not-configured`` or ``body-too-large``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._layer import Layer
from ._wsgi import Environ, StartResponse, WSGIApplication
from .counters import Counters
from .errors import ConfigurationError
from .problem import ProblemError, Response, prepare, send
from .request import client_ip, is_loopback_ip, normalize_path, prefix_needle
from .request_body import MAX_BODY
from .secret import Secret, bearer_token

if TYPE_CHECKING:
    from werkzeug.routing import MapAdapter

__all__ = ["PREFIX", "Admin", "AdminRoute", "Response", "is_authorized"]

PREFIX = "/api/production/"

Handler = Callable[[Environ, Mapping[str, str]], Response]


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """``method`` + a path relative to the prefix (``backups``, ``backup/restore/{name}``)."""

    method: str
    path: str
    handler: Handler
    public_page: bool = False  # a data-free page: served without the token when one is set


def is_authorized(environ: Environ, token: Secret | None) -> bool:
    """The admin access rule: a matching bearer token, or a loopback client when none is set."""
    if token is None or not token:
        return is_loopback_ip(client_ip(environ))
    header = environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        sent = given.strip().encode("ascii")
    except UnicodeEncodeError:  # not ASCII, so not a valid token: never an error
        return False
    return hmac.compare_digest(sent, token.reveal().encode("utf-8"))


# -- the layer ------------------------------------------------------------------------------

_NOT_FOUND = prepare("not-found", "no such endpoint")
_UNAUTHORIZED = prepare(
    "admin-token-required",
    "send Authorization: Bearer <VOYAGR_ADMIN_TOKEN>",
    headers=[("WWW-Authenticate", 'Bearer realm="voyagr"')],
)
_NO_TOKEN = prepare(
    "admin-token-not-configured",
    "state-changing admin endpoints need VOYAGR_ADMIN_TOKEN to be set; send it as a bearer token",
)
_TOO_LARGE = prepare("body-too-large", f"the body is limited to {MAX_BODY} bytes")


def _rule_path(path: str) -> str:
    """``backup/restore/{name}`` -> werkzeug's ``/backup/restore/<name>``."""
    return "/" + path.replace("{", "<").replace("}", ">")


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
        max_body: int = MAX_BODY,  # bytes
        counters: Counters | None = None,
    ) -> None:
        self._init(app, {"token": token, "routes": routes, "prefix": prefix, "max_body": max_body})
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ConfigurationError(f"Admin prefix={prefix!r} must start and end with '/'")
        #: refusals counted as ``rejection("admin", <problem type>)``
        self.counters = counters if counters is not None else Counters()
        self.token = bearer_token(token, "VOYAGR_ADMIN_TOKEN (Admin token=)")
        self.prefix = prefix
        self._needle = prefix_needle(prefix)  # in every spelling of a path under the prefix
        self.routes = tuple(routes)
        self.max_body = max_body
        self._too_large = (
            _TOO_LARGE
            if max_body == MAX_BODY
            else prepare("body-too-large", f"the body is limited to {max_body} bytes")
        )
        for route in self.routes:
            bad = route.path.startswith("/") or route.path.count("{") != route.path.count("}")
            if bad or route.method != route.method.upper():
                raise ConfigurationError(
                    f"AdminRoute {route.method} {route.path!r}: the path is relative to the "
                    "prefix (no leading '/'), parameters are {name}, the method upper case"
                )
        self._adapter: MapAdapter | None = None

    def _handle(self, route: AdminRoute, environ: Environ, params: Mapping[str, str]) -> Response:
        """Run the route's handler (where :meth:`explain` stops)."""
        return route.handler(environ, params)

    def _router(self) -> MapAdapter:
        """werkzeug's router over the routes, built on the first request under the prefix."""
        adapter = self._adapter
        if adapter is None:
            from werkzeug.routing import Map, Rule

            rules = [Rule(_rule_path(r.path), methods=[r.method], endpoint=r) for r in self.routes]
            # no redirects: "metrics/" is not "metrics" and passes on to the app, as does any
            # path no rule matches (werkzeug ignores empty segments: "//metrics" is "metrics")
            url_map = Map(rules, strict_slashes=True, merge_slashes=False)
            adapter = self._adapter = url_map.bind("localhost")
        return adapter

    def _match(
        self, path: str, method: str
    ) -> tuple[AdminRoute | None, Mapping[str, str], tuple[str, ...]] | None:
        """``(route or None, params, allowed methods)``, None when no route has this path."""
        from werkzeug.exceptions import MethodNotAllowed, NotFound
        from werkzeug.routing import RequestRedirect

        try:
            route, params = self._router().match(path[len(self.prefix) - 1 :], method)
        except MethodNotAllowed as exc:
            return None, {}, tuple(sorted(exc.valid_methods or ()))
        except (NotFound, RequestRedirect):
            return None
        return route, params, ()

    def explain(self, environ: Environ) -> dict[str, Any]:
        """Whether an admin endpoint answers the request, and whether its handler would run
        (authorized, method allowed): ``__call__`` run detached, the handler not run."""
        reached: list[AdminRoute] = []

        def handle(route: AdminRoute, environ: Environ, params: Mapping[str, str]) -> Response:
            reached.append(route)
            return "200 OK", [], []

        seen, status, _ = self._run_detached(dict(environ), _handle=handle, counters=Counters())
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
        path = environ.get("PATH_INFO", "")
        if self._needle not in path:  # however spelled, a path under the prefix contains it
            nxt = self._next
            return nxt(environ, start_response)
        if "//" in path or "/." in path:  # request.app_path(), inline: //x, /./x are /x
            path = normalize_path(path)
        if not path.startswith(self.prefix):
            nxt = self._next
            return nxt(environ, start_response)
        return self._serve(path, environ, start_response)

    def _serve(self, path: str, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        match = self._match(path, method)
        if match is None:
            nxt = self._next
            return nxt(environ, start_response)
        route, params, allowed = match
        head = method == "HEAD"
        public_page = route is not None and route.public_page and self.token is not None
        if not public_page and not is_authorized(environ, self.token):
            denied = _NOT_FOUND if self.token is None else _UNAUTHORIZED
            reason = "not-loopback" if self.token is None else "unauthorized"
            self.counters.rejection("admin", reason)
            return self._answer(send(start_response, denied), head)
        if route is None:
            refused = prepare(
                "method-not-allowed",
                f"{method} is not allowed here",
                headers=[("Allow", ", ".join(allowed))],
            )
            self.counters.rejection("admin", "method-not-allowed")
            return self._answer(send(start_response, refused), head)
        if self.token is None and not head and method != "GET":  # a state change
            self.counters.rejection("admin", "admin-token-not-configured")
            return self._answer(send(start_response, _NO_TOKEN), head)
        if self._declared_length(environ) > self.max_body:
            self.counters.rejection("admin", "body-too-large")
            return self._answer(send(start_response, self._too_large), head)
        try:
            answer = self._handle(route, environ, params)
        except ProblemError as problem:
            answer = problem.response()
        start_response(answer[0], answer[1])
        return self._answer(answer[2], head)

    @staticmethod
    def _declared_length(environ: Environ) -> int:
        try:
            return int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0  # werkzeug reads an unparsable length as none

    @staticmethod
    def _answer(body: Iterable[bytes], head: bool) -> Iterable[bytes]:
        if not head:
            return body
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return []

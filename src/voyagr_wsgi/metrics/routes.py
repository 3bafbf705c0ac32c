"""Route templates for metric labels: never the raw path.

A raw path in a label lets every ``/users/1``, ``/users/2`` (and every bot probing
``/wp-admin``) create a new series. The metrics layer labels a request with, in order:

1. ``environ["voyagr.route"]``, set by the app (the helpers below do it for Flask and
   Django, from the same sources OpenTelemetry uses);
2. the first matching template of ``Metrics(routes=[...])`` / ``METRICS_ROUTE_PATTERNS``;
3. ``"__unmatched__"`` for everything else (404s, scanners): one shared bucket.

On top of that the registry caps the number of distinct routes (``METRICS_MAX_ROUTES``) and
sends the rest to ``"__other__"``.

Flask::

    from voyagr_wsgi.metrics.routes import flask_route
    flask_route(app)            # request_started: environ["voyagr.route"] = url_rule.rule

(or :class:`voyagr_wsgi.flask.Voyagr`, which labels every request, those the stack's layers
answer included)

Django (``settings.MIDDLEWARE``)::

    "voyagr_wsgi.metrics.routes.DjangoRouteMiddleware"   # from request.resolver_match.route

(:mod:`voyagr_wsgi.django` goes further: its ``VoyagrMiddleware`` is this one plus labels for
requests that a middleware answers before the view and for the stack's own 429s.)

Templates: ``/users/{id}``, ``/users/<int:id>`` or ``/users/<id>`` match one path segment;
``{rest:path}`` / ``<path:rest>`` match the remainder. This is a template grammar, not the
path-rule grammar of ``*_EXEMPT_PATHS`` (no ``*``: write ``{rest:path}``). A template starts
with ``/``, its ``{...}``/``<...>`` parameters are closed, and it has no ``*``, ``//``,
``.``/``..`` segment, ``?`` or ``#``; anything else is a ConfigurationError naming the
option (``METRICS_ROUTE_PATTERNS``). Templates match the whole of the normalised
``PATH_INFO`` (:func:`voyagr_wsgi.request.app_path`: ``//users/1`` is ``/users/1``), below
the mount point as the app's routes are; ``/users/1/`` does not match ``/users/{id}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigurationError
from ..request import ROUTE

__all__ = [
    "DjangoRouteMiddleware",
    "RoutePatterns",
    "check_templates",
    "django_route",
    "flask_route",
    "flask_rule",
]

_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}|<(?:(\w+):)?(\w+)>")


def _template_regex(template: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _PARAM.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        kind = m.group(2) or m.group(3)
        out.append(".+" if kind == "path" else "[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return "".join(out)


def _template_problem(template: object) -> str | None:
    if not isinstance(template, str) or not template.startswith("/"):
        return "must start with '/'"
    literal = _PARAM.sub("x", template)
    if any(c in literal for c in "{}<>"):
        return "has a parameter that is not {name}, {name:kind}, <name> or <kind:name>"
    if "*" in literal:
        return "has '*' (templates are not path rules: write {rest:path})"
    if any(c in literal for c in "?#"):
        return "has a query or fragment"
    if "//" in literal or any(s in (".", "..") for s in literal.split("/")):
        return "is not a normalised path (no '//', '.' or '..' segments)"
    return None


def check_templates(
    templates: tuple[str, ...], setting: str = "METRICS_ROUTE_PATTERNS"
) -> tuple[str, ...]:
    """``templates`` if each is a valid route template, else a ConfigurationError."""
    RoutePatterns(templates, setting=setting)
    return templates


class RoutePatterns:
    """Map a path to the first matching template, with one combined regex."""

    def __init__(self, templates: Sequence[str], *, setting: str = "routes") -> None:
        self.templates = tuple(templates)
        for t in self.templates:
            problem = _template_problem(t)
            if problem:
                raise ConfigurationError(
                    f"{setting}: route template {t!r} {problem}; accepts paths starting with "
                    "'/' with {name} or <name> for one segment, {name:path} for the rest "
                    "(/users/{id}, /files/{rest:path})"
                )
        parts = [f"(?P<r{i}>{_template_regex(t)})" for i, t in enumerate(self.templates)]
        self._regex = re.compile("(?:" + "|".join(parts) + r")\Z") if parts else None

    def __bool__(self) -> bool:
        return self._regex is not None

    def match(self, path: str) -> str | None:
        if self._regex is None:
            return None
        m = self._regex.match(path)
        if m is None or m.lastgroup is None:
            return None
        return self.templates[int(m.lastgroup[1:])]


def flask_route(app: Any) -> Any:
    """Label every request Flask routes with its rule template (``/users/<int:id>``).

    Connected to Flask's ``request_started`` signal, which fires before every
    ``before_request`` hook, so a request a hook answers (an auth 401) keeps its rule; a 405
    is labelled with the rule whose methods do not include the request's. Requests answered
    before Flask runs (a layer's 429) need :class:`voyagr_wsgi.flask.Voyagr`, which also
    labels those.
    """
    from flask import request_started

    request_started.connect(_flask_label, app, weak=False)
    return app


def _flask_label(sender: Any, **extra: Any) -> None:
    from flask import request

    route = flask_rule(request)
    if route is not None:
        request.environ[ROUTE] = route


def flask_rule(request: Any) -> str | None:
    """The rule template of a Flask request being handled, also for a 405; else None."""
    rule = request.url_rule
    if rule is not None:
        return rule.rule  # type: ignore[no-any-return]
    from flask.globals import request_ctx
    from werkzeug.exceptions import HTTPException, MethodNotAllowed

    exc = request.routing_exception
    adapter = request_ctx.url_adapter
    if not isinstance(exc, MethodNotAllowed) or not exc.valid_methods or adapter is None:
        return None
    try:
        found = adapter.match(return_rule=True, method=sorted(exc.valid_methods)[0])[0]
    except HTTPException:
        return None
    return found.rule


def django_route(match: Any) -> str | None:
    """The label of a Django ``ResolverMatch``: its ``route`` with a leading ``/``
    (``users/<int:id>/`` -> ``/users/<int:id>/``, the root ``""`` -> ``/``; a ``re_path``
    regex loses its ``^``); None without a match."""
    route: str | None = getattr(match, "route", None)
    if route is None:
        return None
    route = route.removeprefix("^")
    return route if route.startswith("/") else "/" + route


class DjangoRouteMiddleware:
    """Django middleware: ``environ["voyagr.route"]`` from ``request.resolver_match``."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        label = django_route(getattr(request, "resolver_match", None))
        if label is not None:
            request.META[ROUTE] = label

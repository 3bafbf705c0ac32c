"""Flask integration: ``Voyagr(app)``, the Flask extension for the voyagr_wsgi stack.

Install with ``pip install 'voyagr-wsgi[flask]'`` (Flask 3). One object wraps the app in the
stack the settings ask for, labels every request with its URL rule, records view exceptions
and gives per-view decorators, the way Flask-Limiter and Flask-Talisman are used::

    from flask import Flask, abort, request
    from voyagr_wsgi.flask import Voyagr

    app = Flask(__name__)
    app.config["RATE_LIMIT_REQUESTS"] = 100           # same names as the environment variables
    voyagr = Voyagr(app)                               # or: voyagr = Voyagr(); voyagr.init_app(app)

    @app.post("/login")
    @voyagr.limit("5/minute")                          # its own budget, per client IP
    def login():
        return "ok"

    @app.get("/static-ish/<path:name>")
    @voyagr.exempt                                     # never counted by the global limit
    def asset(name):
        return name

    @app.post("/hooks/stripe")
    @voyagr.csrf_exempt                                # cross-site POSTs accepted
    def stripe_hook():
        return "received"

    # gunicorn 'app:app' -c python:voyagr_wsgi.gunicorn   (the hooks start the services)

**Settings.** ``Voyagr(app, settings=Settings(...))`` uses those settings. Without
``settings``, :func:`settings_from_config` reads ``app.config`` over the environment: a key
of ``app.config`` named like a variable (``RATE_LIMIT_REQUESTS``) replaces the environment
variable, and :meth:`Settings.from_env <voyagr_wsgi.Settings.from_env>` validates the result
(Flask's own keys and the app's other keys are never read). Config values may be Python values:
``True``/``False`` become ``true``/``false``, numbers their decimal text, a list, tuple or
set the comma-joined items (``ALLOWED_HOSTS=["example.com", ".example.com"]``), a dict
``{"/login": "5/minute"}`` the ``path=spec`` comma list (``RATE_LIMIT_ROUTES``), a path its
text; ``None`` leaves the environment's value; any other type is a ConfigurationError.

**The stack** wraps ``app.wsgi_app`` (``app.wsgi_app = voyagr.stack``), so Flask's test client
goes through it too. ``voyagr.stack`` is the :class:`~voyagr_wsgi.compose.Stack`: under
gunicorn with ``-c python:voyagr_wsgi.gunicorn`` the hooks find it (through
``app.wsgi_app`` or ``app.extensions["voyagr"]``) and start and stop its services; anywhere
else call ``voyagr.stack.start()`` / ``stop()`` yourself. ``app.extensions["voyagr"]`` is the
extension. One ``Voyagr`` serves one app.

**Route labels.** Every request is labelled with its rule template (``/users/<int:id>``),
also when a ``before_request`` hook answers (a 401), for a 405 (the rule whose methods do not
include the request's), and for answers the stack's layers give before Flask routes (429,
CSRF 403, host check 400): those are matched lazily against ``app.url_map``, only when no
label was set. A path no rule matches (a 404, a redirect to the slash-terminated rule) is
``__unmatched__``.

**View exceptions.** Flask turns a view's exception into a 500 before the Metrics layer sees
it; the extension listens to ``got_request_exception`` and puts it into
``environ["voyagr.exc_info"]`` (:data:`voyagr_wsgi.metrics.layer.EXC_INFO`, as the Django
integration does), which the Metrics layer records (by type, with its traceback in the recent
errors) when the 5xx response ends.

**Decorators.**

- ``@voyagr.limit("5/minute")``: a budget for this view alone, per client IP (the key is the
  IP plus the endpoint; ``key=`` a callable returning a string replaces the IP). The spec is
  Flask-Limiter's syntax: ``"5/minute"``, ``"5 per minute"``, ``"5/60s"``, several rates
  joined with ``;``, ``,`` or ``|`` (``"10/second;100/hour"``), every one enforced. It is
  checked in a ``before_request`` hook placed before the app's own hooks (so a login limit
  also counts attempts an auth hook refuses), with the stack's rate-limit store
  (``RATE_LIMIT_STORAGE``: memory or Redis; a memory store of its own when
  ``RATE_LIMIT_ENABLED=false``); ``RATE_LIMIT_ALLOW`` clients are never limited and
  ``RATE_LIMIT_REDIS_FAILURE`` applies when the store fails. A denied request gets ``429``
  with ``Retry-After``, ``RateLimit-Policy`` / ``RateLimit`` fields and an RFC 9457
  ``application/problem+json`` body (type ``quota-exceeded``); allowed responses carry the
  view's fields next to the global policy's. The global limit applies as well.
- ``@voyagr.exempt``: the global ``RateLimit`` layer never counts or limits this view. The
  layer runs before Flask routes, so the extension puts a small gate in front of it: when the
  path starts with the static part of an exempt view's rule, the gate matches the request
  against ``app.url_map`` (as Flask will) and, for an exempt view and an allowed method,
  calls the layer's inner app directly. Any other request (a prefix that turns out to be
  another rule, a 404, a redirect) goes through the layer, so an exemption never widens.
- ``@voyagr.csrf_exempt``: ``CrossOriginProtection`` lets this view's unsafe requests
  through (webhooks signed by the sender). Same gate, checked only for unsafe methods.

The decorators go under ``@app.route`` (or above it: they mark the function). Marks are read
from ``app.view_functions`` at the first request, and again whenever views are added.

What does not carry over from Flask-Limiter: limits on blueprints as a whole, shared limits
across views (``shared_limit``), ``deduct_when`` / per-response costs, moving-window and
fixed-window strategies (voyagr uses GCRA), and one extension object for several apps. From
Flask-Talisman: per-view header overrides (use ``Settings.security_routes``) and nonce
helpers in templates (``environ["voyagr.csp_nonce"]`` when ``CSP_NONCE=true``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._extras import missing

try:
    import flask
    from werkzeug.exceptions import HTTPException, MethodNotAllowed
except ImportError as exc:
    raise missing("voyagr_wsgi.flask", "flask") from exc

from ._layer import direct_call
from ._wsgi import Environ, StartResponse, WSGIApplication
from .errors import ConfigurationError, StorageError
from .metrics.layer import EXC_INFO
from .metrics.routes import flask_rule
from .request import ROUTE, client_ip
from .settings import Settings

if TYPE_CHECKING:
    from .compose import Stack
    from .ratelimit.gcra import Policy
    from .ratelimit.store import Store

__all__ = ["Voyagr", "settings_from_config"]

F = TypeVar("F", bound=Callable[..., Any])

UNMATCHED = "__unmatched__"
#: the cached url_map match of a request: (rule or None, whether the method is allowed)
_MATCH = "voyagr.flask.match"
#: the RateLimit fields of the view limits that allowed this request
_FIELDS = "voyagr.flask.fields"
_MARK = "_voyagr_marks"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_PROBLEM = "https://iana.org/assignments/http-problem-types#"


def settings_from_config(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Settings:
    """:class:`Settings` from ``app.config`` over ``environ`` (``os.environ``); see the module
    docstring for how config values become variable text."""
    return Settings.from_env(_ConfigOverEnv(config, os.environ if environ is None else environ))


class _ConfigOverEnv(Mapping[str, str]):
    """The variables :meth:`Settings.from_env` reads: a config key (converted to text when
    read, so only the names voyagr reads are converted) over the environment's."""

    def __init__(self, config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self._config = config
        self._environ = environ

    def __getitem__(self, name: str) -> str:
        value = self._config.get(name)
        if value is None:
            return self._environ[name]
        return _as_text(name, value)

    def __iter__(self) -> Iterator[str]:
        names = {k for k, v in self._config.items() if isinstance(k, str) and v is not None}
        return iter(names | set(self._environ))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, os.PathLike):
        return str(os.fspath(value))
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(item) for item in value)
    raise ConfigurationError(
        f"app.config[{name!r}]={value!r}: use a str, bool, number, list or dict"
    )


class _ViewLimit:
    """The compiled policies of one ``@voyagr.limit`` (endpoint-independent)."""

    __slots__ = ("items", "key", "policies")

    def __init__(self, policies: tuple[Policy, ...], key: Callable[[], str | None] | None):
        self.policies = policies
        self.items = [
            ("" if i == 0 else ":" + p.name, p.interval, p.tolerance)
            for i, p in enumerate(policies)
        ]
        self.key = key


class Voyagr:
    """The Flask extension; see the module documentation."""

    def __init__(self, app: flask.Flask | None = None, *, settings: Settings | None = None):
        self.app: flask.Flask | None = None
        self.stack: Stack | None = None
        self.settings = settings
        self._seen = -1  # len(app.view_functions) when the marks were last read
        self._endpoints: dict[str, frozenset[str]] = {"exempt": frozenset(), "csrf": frozenset()}
        self._prefixes: dict[str, tuple[str, ...]] = {"exempt": (), "csrf": ()}
        self._limits: dict[str, _ViewLimit] = {}
        if app is not None:
            self.init_app(app)

    # -- set-up ---------------------------------------------------------------------------
    def init_app(self, app: flask.Flask, *, settings: Settings | None = None) -> None:
        """Wrap ``app.wsgi_app`` in the stack and register the hooks and signals."""
        if self.app is not None and self.app is not app:
            raise ConfigurationError("Voyagr: one instance serves one app; make another")
        if "voyagr" in app.extensions:
            raise ConfigurationError("Voyagr: this app already has a Voyagr extension")
        settings = settings or self.settings or settings_from_config(app.config)
        self.settings = settings
        self.app = app
        self.stack = self._build(app.wsgi_app, settings)
        app.wsgi_app = self.stack  # type: ignore[method-assign]
        app.extensions["voyagr"] = self
        from .ratelimit.keys import AllowList, ipv6_grouper

        self._store = self.stack.components.get("ratelimit")
        if self._store is None:
            from .ratelimit.memory import MemoryStore

            self._store = MemoryStore(max_keys=settings.ratelimit.max_keys)
        self._fallback: Store | None = None
        if settings.ratelimit.redis_failure == "local":
            from .ratelimit.memory import MemoryStore

            self._fallback = MemoryStore(max_keys=settings.ratelimit.max_keys)
        self._allow = AllowList(settings.ratelimit.allow)
        self._group6 = ipv6_grouper(settings.ratelimit.ipv6_prefix)
        flask.request_started.connect(self._label, app, weak=False)
        flask.got_request_exception.connect(self._record, app, weak=False)
        app.before_request_funcs.setdefault(None, []).insert(0, self._check_limit)
        app.after_request(self._add_fields)

    def _build(self, wsgi_app: WSGIApplication, settings: Settings) -> Stack:
        from .areas import build_context
        from .compose import _wrap

        context = build_context(settings)
        parts: list[Any] = []
        for layer in context.layers:
            name = type(layer).__name__
            if name == "RateLimit":
                parts.append(lambda inner: _Gate(inner, self, "exempt", all_methods=True))
            elif name == "CrossOriginProtection":
                parts.append(lambda inner: _Gate(inner, self, "csrf", all_methods=False))
            parts.append(layer)
            if name == "Metrics":
                parts.append(lambda inner: _Labeller(inner, self))
        return _wrap(wsgi_app, parts, context=context, state_dir=settings.state_dir)

    # -- decorators -----------------------------------------------------------------------
    def limit(
        self,
        spec: str,
        *,
        burst: int | None = None,
        name: str | None = None,
        key: Callable[[], str | None] | None = None,
    ) -> Callable[[F], F]:
        """``@voyagr.limit("5/minute")``: this view's own budget (see the module docs)."""
        from .ratelimit.rules import build_policies, check_burst
        from .ratelimit.spec import parse_rates

        # Flask-Limiter also separates stacked rates with "," or "|"
        rates = parse_rates(re.sub(r"[,|]", ";", spec), setting="voyagr.limit")
        checked = check_burst(burst, "voyagr.limit burst")

        def decorate(view: F) -> F:
            label = str(name or getattr(view, "__name__", None) or "view")
            if not (label.isascii() and label.isprintable()) or len(label) > 56:
                label = "view"
            _marks(view)["limit"] = _ViewLimit(build_policies(label, rates, checked), key)
            return view

        return decorate

    def exempt(self, view: F) -> F:
        """``@voyagr.exempt``: the global RateLimit layer never limits this view."""
        _marks(view)["exempt"] = True
        return view

    def csrf_exempt(self, view: F) -> F:
        """``@voyagr.csrf_exempt``: CrossOriginProtection lets this view's requests through."""
        _marks(view)["csrf"] = True
        return view

    # -- marks and matching ---------------------------------------------------------------
    def _app(self) -> flask.Flask:
        if self.app is None:
            raise ConfigurationError("Voyagr: call init_app(app) first")
        return self.app

    def _refresh(self) -> None:
        """Read the marks of the registered views (again when views were added)."""
        app = self._app()
        views = dict(app.view_functions)
        found: dict[str, set[str]] = {"exempt": set(), "csrf": set()}
        limits: dict[str, _ViewLimit] = {}
        for endpoint, view in views.items():
            marks = getattr(view, _MARK, None) or {}
            for kind in found:
                if marks.get(kind):
                    found[kind].add(endpoint)
            if "limit" in marks:
                limits[endpoint] = marks["limit"]
        for kind, endpoints in found.items():
            prefixes = {
                rule.rule.split("<", 1)[0]
                for rule in app.url_map.iter_rules()
                if rule.endpoint in endpoints
            }
            self._prefixes[kind] = tuple(sorted(prefixes))
            self._endpoints[kind] = frozenset(endpoints)
        self._limits = limits
        self._seen = len(views)

    def _marked(self, kind: str, environ: Environ) -> bool:
        """True when the request goes to a view marked ``kind``, with an allowed method."""
        app = self.app
        if self._seen != len(app.view_functions):  # type: ignore[union-attr]
            self._refresh()
        prefixes = self._prefixes[kind]
        if not prefixes or not environ.get("PATH_INFO", "").startswith(prefixes):
            return False
        rule, allowed = self._lookup(environ)
        return allowed and rule is not None and rule.endpoint in self._endpoints[kind]

    def _lookup(self, environ: Environ) -> tuple[Any, bool]:
        found = environ.get(_MATCH)
        if found is None:
            found = environ[_MATCH] = self._match(environ)
        return found

    def _match(self, environ: Environ) -> tuple[Any, bool]:
        """Match as Flask will: ``(rule, True)``; ``(rule, False)`` for a method the rule
        does not take; ``(None, False)`` for no rule (404, redirect, bad host)."""
        app = self._app()
        try:
            adapter = app.create_url_adapter(app.request_class(environ))
            if adapter is None:
                return None, False
            try:
                return adapter.match(return_rule=True)[0], True
            except MethodNotAllowed as exc:
                methods = sorted(exc.valid_methods or ())
                if not methods:
                    return None, False
                return adapter.match(return_rule=True, method=methods[0])[0], False
        except HTTPException:
            return None, False

    def _route_of(self, environ: Environ) -> str:
        rule = self._lookup(environ)[0]
        return rule.rule if rule is not None else UNMATCHED

    # -- Flask signals and hooks ----------------------------------------------------------
    def _label(self, sender: Any, **extra: Any) -> None:
        """``request_started``: before every ``before_request`` hook, label the request."""
        request = flask.request
        request.environ[ROUTE] = flask_rule(request) or UNMATCHED

    def _record(self, sender: Any, exception: BaseException, **extra: Any) -> None:
        """``got_request_exception``: hand the exception to the Metrics layer."""
        flask.request.environ[EXC_INFO] = (type(exception), exception, exception.__traceback__)

    def _check_limit(self) -> flask.Response | None:
        """``before_request``: the view's own limit, if it has one."""
        if self._seen != len(self.app.view_functions):  # type: ignore[union-attr]
            self._refresh()
        request = flask.request
        endpoint = request.endpoint
        limit = self._limits.get(endpoint) if endpoint is not None else None
        if limit is None:
            return None
        environ = request.environ
        ip = client_ip(environ)
        if self._allow and ip in self._allow:
            return None
        who = limit.key() if limit.key is not None else None
        if who is None:
            who = self._group6(ip) if ":" in ip else ip
        key = f"view\x1f{endpoint}\x1f{who}"
        try:
            allowed, offsets = _decide(self._store, key, limit.items)
        except StorageError:
            failure = self.settings.ratelimit.redis_failure  # type: ignore[union-attr]
            if self._fallback is not None:
                allowed, offsets = _decide(self._fallback, key, limit.items)
            elif failure == "closed":
                return _problem(
                    503, "Temporary Reduced Capacity", "temporary-reduced-capacity",
                    headers=[("Retry-After", "1")],
                )  # fmt: skip
            else:
                return None
        pairs = list(zip(limit.policies, offsets, strict=True))
        if allowed:
            environ[_FIELDS] = _fields(pairs)
            return None
        _, policy, offset = max(
            ((o + p.interval - p.tolerance, p, o) for p, o in pairs), key=lambda d: d[0]
        )
        retry = policy.retry_after(offset, 1)
        quoted = json.dumps(policy.name)
        headers = [
            ("Retry-After", str(retry)),
            ("RateLimit-Policy", f"{quoted};q={policy.rate.quota};w={policy.window_header}"),
            ("RateLimit", f"{quoted};r={policy.remaining(offset)};t={retry}"),
        ]
        return _problem(
            429, "Quota Exceeded", "quota-exceeded", headers=headers,
            extra={"violated-policies": [policy.name]},
        )  # fmt: skip

    def _add_fields(self, response: flask.Response) -> flask.Response:
        fields = flask.request.environ.get(_FIELDS)
        if fields is not None:
            for name, value in fields:
                response.headers.add(name, value)
        return response


def _marks(view: Any) -> dict[str, Any]:
    marks = getattr(view, _MARK, None)
    if marks is None:
        marks = {}
        setattr(view, _MARK, marks)
    return marks


def _decide(
    store: Any, key: str, items: list[tuple[str, float, float]]
) -> tuple[bool, list[float]]:
    if hasattr(store, "update_many"):
        return store.update_many(key, items, 1)  # type: ignore[no-any-return]
    if len(items) > 1:
        raise ConfigurationError("voyagr.limit: stacked rates need a store with update_many()")
    allowed, offset = store.update(key, items[0][1], items[0][2], 1)
    return allowed, [offset]


def _fields(pairs: list[tuple[Policy, float]]) -> list[tuple[str, str]]:
    """The RateLimit-Policy and RateLimit fields of an allowed request (draft -11)."""
    policies, limits = [], []
    for policy, offset in pairs:
        quoted = json.dumps(policy.name)
        policies.append(f"{quoted};q={policy.rate.quota};w={policy.window_header}")
        left, reset = policy.state(offset)  # the one place the field arithmetic lives
        limits.append(f"{quoted};r={left};t={reset}")
    return [("RateLimit-Policy", ", ".join(policies)), ("RateLimit", ", ".join(limits))]


def _problem(
    status: int,
    title: str,
    kind: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    extra: Mapping[str, Any] | None = None,
) -> flask.Response:
    """An RFC 9457 ``application/problem+json`` response (type from the IANA registry)."""
    doc = {"type": _PROBLEM + kind, "title": title, "status": status, **(extra or {})}
    response = flask.Response(
        json.dumps(doc, separators=(",", ":")),
        status=status,
        content_type="application/problem+json",
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers:
        response.headers[name] = value
    return response


class _Gate:
    """In front of a layer: a request for a view marked ``kind`` skips the layer."""

    def __init__(self, layer: Any, voyagr: Voyagr, kind: str, *, all_methods: bool) -> None:
        self.layer = layer
        self._layer = direct_call(layer)
        self._inner = direct_call(layer.app)
        self._voyagr = voyagr
        self._kind = kind
        self._all = all_methods

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if (self._all or environ.get("REQUEST_METHOD") not in _SAFE) and self._voyagr._marked(
            self._kind, environ
        ):
            return self._inner(environ, start_response)
        return self._layer(environ, start_response)

    def explain(self, environ: Environ) -> dict[str, Any] | None:
        return None

    def __repr__(self) -> str:
        return f"voyagr.flask gate ({self._kind} views skip {type(self.layer).__name__})"


class _Labeller:
    """Inside Metrics: label requests Flask never saw (answered by a layer) from the url_map."""

    def __init__(self, app: WSGIApplication, voyagr: Voyagr) -> None:
        self.app = app
        self._next = direct_call(app)
        self._voyagr = voyagr

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        nxt = self._next
        body = nxt(environ, start_response)
        if ROUTE not in environ:
            environ[ROUTE] = self._voyagr._route_of(environ)
        return body

    def explain(self, environ: Environ) -> dict[str, Any] | None:
        return None

    def __repr__(self) -> str:
        return "voyagr.flask route labeller"

"""``Metrics``: count, time and label every request, until the server closes the body.

Place it outermost after ``ProxyTrust`` (``compose`` does), so redirects and the 400/403/429
answers of inner layers are counted too::

    from voyagr_wsgi.layers import Metrics
    application = Metrics(app, routes=["/users/{id}", "/trips/{id}/legs"])

Per request it records, into its :class:`~voyagr_wsgi.metrics.registry.Registry` (``registry=``,
or a new one: ``layer.registry``), which it also makes the *current* registry of the request
(:mod:`.context`), so ``track_upstream("osrm")`` in the app records there:

- ``method`` (the nine RFC 9110 methods, anything else as ``_OTHER``, OpenTelemetry's rule),
  ``route`` (a template, never the raw path: see :mod:`.routes`) and ``status``;
- the duration from the call until the server calls ``close()`` on the body (PEP 3333), so a
  streamed response is timed in full, and the time to first byte (``start_response``). A
  server-sent-event stream (``Content-Type: text/event-stream``) is recorded with its time to
  first byte as its duration: its lifetime (minutes, by design) is not a latency, and would
  otherwise push p95 past every threshold (the access log still shows the lifetime);
- requests in flight; exceptions by type, whether raised by the app or while the server
  iterates the body: they are recorded, then re-raised untouched. A framework that turns a
  view's exception into its own 500 page (Flask, Django) hands it over as
  ``environ["voyagr.exc_info"]`` (:data:`EXC_INFO`, a ``sys.exc_info()`` triple; the
  :mod:`voyagr_wsgi.django` and :mod:`voyagr_wsgi.flask` integrations set it): on a 5xx
  response it is recorded the same way, by type with its traceback.

It gives the request an id (``environ["voyagr.request_id"]``, ``X-Request-ID`` on the
response) and writes the access log line (:mod:`.accesslog`). Paths under
``/api/production/`` (the admin and probe endpoints) are passed through uncounted.

The body is never buffered or re-chunked. A ``wsgi.file_wrapper`` body is returned as is
(so the server can still ``sendfile``) with its ``close`` hooked; a list body comes back as
a list of the same chunks (``len()`` works as on the app's list, so a server may still set
``Content-Length`` from a one-chunk body) whose ``close()`` does the accounting; any other
body goes through a generator that notices exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from logging import INFO
from time import perf_counter
from typing import Any

from .._layer import Layer
from .._wsgi import Environ, StartResponse, WSGIApplication
from ..admin import PREFIX
from ..request import REQUEST_ID, ROUTE, app_path
from . import accesslog
from .context import CURRENT
from .registry import UNMATCHED, Registry
from .routes import RoutePatterns

__all__ = ["EXC_INFO", "METHODS", "Metrics"]

_log_enabled = accesslog.access_logger.isEnabledFor
_valid_id = accesslog.valid_request_id
_new_id = accesslog.new_request_id
_Ids = accesslog._Ids
_Observe = Callable[[str, str, int, float, float, bool, float], None]
_HEADER = accesslog.HEADER
_current = CURRENT.get
_make_current = CURRENT.set
#: environ key of a ``sys.exc_info()`` triple a framework caught and answered with a 5xx
EXC_INFO = "voyagr.exc_info"
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)


class Metrics(Layer):
    """Record every request into a registry; see the module documentation."""

    def __init__(
        self,
        app: WSGIApplication | None = None,
        /,
        *,
        registry: Registry | None = None,
        routes: Sequence[str] = (),  # templates: "/users/{id}"
        exclude: Sequence[str] = (PREFIX,),  # path prefixes not counted
        request_id: bool = True,  # set environ["voyagr.request_id"] and X-Request-ID
        trust_request_id: bool = True,  # keep a well-formed incoming X-Request-ID
        access_log: bool = True,  # JSON line on logger voyagr_wsgi.access (when enabled)
        now: Callable[[], float] = perf_counter,  # seconds, for durations; injectable for tests
    ) -> None:
        self._init(
            app,
            {
                "registry": registry,
                "routes": routes,
                "exclude": exclude,
                "request_id": request_id,
                "trust_request_id": trust_request_id,
                "access_log": access_log,
                "now": now,
            },
        )
        self.registry = registry if registry is not None else Registry()
        self._options["registry"] = self.registry  # bind() keeps the same registry
        self.patterns = RoutePatterns(routes, setting="Metrics(routes=)")
        self.match = self.patterns.match if self.patterns else None
        self.exclude = tuple(exclude)
        #: what the request path passes to ``str.startswith``: one prefix as itself
        self._skip: str | tuple[str, ...] = (
            self.exclude[0] if len(self.exclude) == 1 else self.exclude
        )
        #: a cheaper first test: a path under the one prefix contains it (``in`` is one fast
        #: C call, ``startswith`` parses its arguments); "" (always in) with several prefixes
        self._hint = self.exclude[0] if len(self.exclude) == 1 else ""
        self.request_id = request_id
        self.trust_request_id = trust_request_id
        self.access_log = access_log
        self.clock = now
        self.started = self.registry.started
        self.observe = _observe_with_end(self.registry, now)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self._hint in path and path.startswith(self._skip):
            if self.access_log and _log_enabled(INFO):  # logged, not counted
                return self._log_only(environ, start_response)
            nxt = self._next
            return nxt(environ, start_response)
        registry = self.registry
        if _current() is not registry:  # compared, not set per request: see .context
            _make_current(registry)
        call = _Call()  # no Python __init__: list's, in C (cheaper than list.__new__)
        call.layer = self
        call.environ = environ
        call.sr = start_response
        call.status = ""
        call.ttfb = -1.0
        call.exc = None
        call.done = False
        if self.request_id:
            rid = environ.get("HTTP_X_REQUEST_ID")
            if rid is None or not (self.trust_request_id and _valid_id(rid)):
                prefix = _Ids.prefix
                rid = prefix + str(_Ids.counter()) if prefix else _new_id()
            environ[REQUEST_ID] = rid
            call.header = (_HEADER, rid)
        else:
            call.header = None
        started = self.started  # lock-free: itertools.count (a local: see _layer.direct_call)
        started()
        call.clock = clock = self.clock
        call.t0 = clock()
        try:
            nxt = self._next
            body = nxt(environ, call.start_response)
        except Exception as exc:
            call.exc = exc
            call.status = ""  # the server answers 500: nothing was sent yet
            call.close()
            raise
        except BaseException:
            call.close()
            raise
        if type(body) is list:  # the common case: the server iterates call, close() accounts
            call.body = body
            call.extend(body)
            return call
        return call.wrap(body)

    def _log_only(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """An excluded path (the library's own endpoints): access-logged, not counted."""
        call = _LogOnly()
        call.layer, call.environ, call.sr = self, environ, start_response
        call.status, call.ttfb, call.exc, call.done, call.header = "", -1.0, None, False, None
        call.clock = self.clock
        call.t0 = self.clock()
        try:
            nxt = self._next
            body = nxt(environ, call.start_response)
        except BaseException:
            call.close()
            raise
        if type(body) is list:
            call.body = body
            call.extend(body)
            return call
        return call.wrap(body)

    def explain(self, environ: Environ) -> dict[str, Any]:
        """Whether the request is counted, its route label so far and its request id:
        ``__call__`` run detached with the registry and the access log replaced by a
        recorder, so nothing is counted (a generated id still takes a number)."""
        observed: list[str] = []
        started: list[bool] = []

        def observe(method: str, route: str, *rest: Any) -> None:
            observed.append(route)

        seen, _, _ = self._run_detached(
            dict(environ), started=lambda: started.append(True), observe=observe,
            access_log=False,
        )  # fmt: skip
        if not started or seen is None:
            return {"outcome": "passes", "recorded": False, "reason": "excluded path"}
        rid = seen.get(REQUEST_ID)
        if rid is None:
            request_id = "off"
        elif rid == environ.get("HTTP_X_REQUEST_ID"):
            request_id = f"kept from X-Request-ID: {rid}"
        else:
            request_id = "generated"
        return {
            "outcome": "passes",
            "recorded": True,
            "route": observed[0],  # the app may still name it (voyagr.route)
            "request_id": request_id,
        }

    def route_of(self, environ: Environ) -> str:
        """The label of a request: ``voyagr.route``, a template, or ``__unmatched__``."""
        route = environ.get(ROUTE)
        if route:
            return route  # type: ignore[no-any-return]
        match = self.match
        return (match(app_path(environ)) if match else None) or UNMATCHED


def _observe_with_end(registry: Registry, clock: Callable[[], float]) -> _Observe:
    """``observe_request`` taking the layer's end-of-request clock reading last.

    A ``perf_counter`` reading also finds the registry's time slot (one wall-clock read
    less per request); another clock's readings mean nothing to the registry.
    """
    observe = registry.observe_request
    if clock is perf_counter:
        return observe

    def observe_ignoring_end(
        method: str, route: str, status: int, duration_s: float, ttfb_s: float, error: bool,
        end: float,
    ) -> None:  # fmt: skip
        observe(method, route, status, duration_s, ttfb_s, error)

    return observe_ignoring_end


_STATUS: dict[str, int] = {}


def _parse_status(status_line: str) -> int:
    """The status code of a status line (500 when the app never started a response)."""
    if not status_line:
        return 500
    try:
        status = int(status_line[:3])
    except ValueError:
        return 0
    if len(_STATUS) < 1000:
        _STATUS[status_line] = status
    return status


class _Call(list[bytes]):
    """One request in flight: the wrapped ``start_response``, and the body the server gets.

    A list body (the common case) is copied into this list, so the server iterates it at C
    speed (no Python ``__iter__``) and ``len()`` answers as for the app's list; ``close()``
    does the accounting. Any other body goes out through :class:`_Stream`, or, for a
    ``wsgi.file_wrapper``, as itself with its ``close`` hooked. It has no ``__init__``
    (no Python frame): :meth:`Metrics.__call__` sets the slots.
    """

    __slots__ = (
        "body", "clock", "done", "environ", "exc", "header", "headers", "layer", "sr", "status",
        "t0", "ttfb",
    )  # fmt: skip

    #: observed in the metrics (a class attribute: :class:`_LogOnly` says False)
    counted = True
    body: Iterable[bytes]
    clock: Callable[[], float]
    done: bool
    environ: Environ
    exc: BaseException | None
    header: tuple[str, str] | None  # X-Request-ID, or None when ids are off
    headers: Any  # the app's response headers (set by start_response)
    layer: Metrics
    sr: StartResponse
    status: str
    t0: float
    ttfb: float

    def start_response(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        # slot members read into locals before calling them: CPython 3.11 does not specialise
        # a method lookup on a slot (see voyagr_wsgi._layer.direct_call)
        if self.ttfb < 0:
            clock = self.clock
            self.ttfb = clock() - self.t0
        self.status = status
        self.headers = headers
        header = self.header
        if header is not None:
            headers = [*headers, header]
        sr = self.sr
        if exc_info is None:
            return sr(status, headers)
        return sr(status, headers, exc_info)

    def wrap(self, body: Iterable[bytes]) -> Iterable[bytes]:
        """What the server gets for a body that is not a list."""
        self.body = body
        wrapper = self.environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(body, wrapper):
            inner = getattr(body, "close", None)

            def close() -> None:
                try:
                    if inner is not None:
                        inner()
                finally:
                    self.close(stream=True)

            try:
                body.close = close  # type: ignore[attr-defined]
                return body  # still the server's file wrapper: sendfile keeps working
            except AttributeError:
                pass
        return _Stream(self)

    def close_body(self) -> None:
        """Close the app's body (not a list), then account."""
        if self.done:
            return
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.close(stream=True)

    def _iterate(self, body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            yield from body
        except Exception as exc:
            self.exc = exc
            raise

    def close(self, stream: bool = False) -> None:
        """The end of the request: account for it (once; the body is closed by now).
        ``stream``: the body was not a list (it may be a server-sent-event stream)."""
        if self.done:
            return
        self.done = True
        clock = self.clock  # a local, as in start_response
        end = clock()
        duration = end - self.t0
        layer = self.layer
        environ = self.environ
        status_line = self.status
        try:
            status = _STATUS[status_line]
        except KeyError:
            status = _parse_status(status_line)
        route = environ.get(ROUTE)
        if not route:
            match = layer.match
            route = match(app_path(environ)) or UNMATCHED if match else UNMATCHED
        try:
            method = environ["REQUEST_METHOD"]  # PEP 3333: always present
        except KeyError:
            method = "GET"
        if method not in METHODS:
            method = "_OTHER"
        exc = self.exc
        if exc is None and status >= 500:  # a framework's 500 page for a view's exception
            info = environ.get(EXC_INFO)
            if info is not None and info[1] is not None:
                exc = info[1]
        ttfb = self.ttfb if self.ttfb >= 0 else duration
        if stream and _event_stream(getattr(self, "headers", None)):
            duration, lifetime = ttfb, duration  # an SSE stream's life is no latency (docs)
        else:
            lifetime = duration
        if self.counted:
            if exc is not None:
                layer.registry.record_exception(exc, route)
            observe = layer.observe
            observe(method, route, status, duration, ttfb, exc is not None or status >= 500, end)
        if layer.access_log and _log_enabled(INFO):
            rid = self.header[1] if self.header is not None else None
            headers, body = getattr(self, "headers", None), getattr(self, "body", None)
            size = accesslog.response_size(headers, body)
            accesslog.emit(environ, method, route, status, lifetime, rid, size)


class _LogOnly(_Call):
    """A request on an excluded path: access-logged when it ends, never counted."""

    __slots__ = ()
    counted = False


def _event_stream(headers: Any) -> bool:
    """True when the response headers say ``Content-Type: text/event-stream``."""
    for name, value in headers or ():
        if name.lower() == "content-type":
            return str(value).lower().startswith("text/event-stream")
    return False


class _Stream:
    """A body that is neither a list nor a file wrapper: iterated through, exceptions noted."""

    __slots__ = ("call",)

    def __init__(self, call: _Call) -> None:
        self.call = call

    def __iter__(self) -> Iterator[bytes]:
        call = self.call
        return call._iterate(call.body)

    def close(self) -> None:
        self.call.close_body()

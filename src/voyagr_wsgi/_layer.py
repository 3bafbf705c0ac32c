"""The base every layer shares: built around an app, or unbound for :func:`compose`.

A layer is a WSGI callable built from the app it wraps plus keyword-only options::

    application = SecurityHeaders(app, preset="strict")

The same class called without an app makes an *unbound* layer that :func:`compose` wraps
around whatever sits inside it (first listed = outermost)::

    application = compose(app, ProxyTrust(trusted=["10.0.0.0/8"]), SecurityHeaders())

Subclasses pass their app and options to :meth:`Layer._init`; all validation and
precomputation happens once, in the subclass ``__init__``. :meth:`bind` wraps a copy of a
built layer around another app without running ``__init__`` again.

One decision per layer: what a layer does with a request is decided in one place, its
``__call__`` (with the helpers it calls), and :meth:`Layer.explain` reports that decision
instead of re-deriving it: ``explain`` runs the layer's own ``__call__`` detached
(:meth:`Layer._run_detached`) on a shallow copy, around a recorder instead of the app, with
each side effect (an attribute the request path calls) swapped for a stand-in. So the request
path pays nothing for being explainable, and a change to a decision reaches both at once:

- ProxyTrust, SecurityHeaders: no side effects, run as they are; HTTPSRedirect with a
  throwaway ``counters`` (a refusal is not counted);
- HostCheck (``_refuse``) and CrossOriginProtection (``_deny``): the refusal is recorded,
  not logged, and no ``deny_handler`` runs;
- RateLimit (``store``, ``_update``, ``_fallback``): a store that peeks (cost 0) and decides
  with :func:`voyagr_wsgi.ratelimit.gcra.step`, writing nothing (and ``counters``,
  ``default``, ``rules``: copies whose decisions count nowhere);
- Probe (``_report``), Admin (``_handle``, ``counters``): health checks and admin handlers do
  not run, refusals are not counted;
- Metrics (``started``, ``observe``, ``access_log``): nothing is counted or logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import FunctionType, MethodType
from typing import Any, ClassVar, Self, TypeVar

from ._wsgi import Environ, StartResponse, WSGIApplication
from .errors import ConfigurationError

__all__ = ["Layer", "direct_call"]

_L = TypeVar("_L")


class Layer:
    """Base class: ``Layer(app, **options)`` or unbound ``Layer(**options)``."""

    #: services (objects with start/stop/state) this layer owns; compose starts them.
    services: ClassVar[tuple[Any, ...]] = ()

    app: WSGIApplication
    #: ``app`` as the cheapest callable: its bound ``__call__`` when it is an instance
    _next: WSGIApplication
    _options: dict[str, Any]

    def _init(self, app: WSGIApplication | None, options: dict[str, Any]) -> None:
        self.app = app if app is not None else _unbound
        self._next = direct_call(self.app)
        self._options = options

    @property
    def bound(self) -> bool:
        return self.app is not _unbound

    def bind(self, app: WSGIApplication) -> Self:
        """A copy of this layer wrapped around ``app``; this one stays as it is.

        The copy is shallow: it shares what ``__init__`` built (header tables, compiled rules,
        the rate-limit store, the metrics registry), which is never rebuilt or re-validated.
        """
        bound = _clone(self)
        bound.app = app
        bound._next = direct_call(app)
        return bound

    def explain(self, environ: Environ) -> dict[str, Any] | None:
        """What this layer would do with a request, changing nothing and calling no app.

        A dict with ``outcome`` (``"passes"`` or ``"answers"``) and details, or None when the
        layer cannot tell. A layer that resolves something for the layers after it (ProxyTrust)
        updates ``environ``, a private copy. Used by :func:`voyagr_wsgi.explain.explain`.
        """
        return None

    def _run_detached(
        self, environ: Environ, **replace: Any
    ) -> tuple[Environ | None, str, list[Any]]:
        """Run this layer's own ``__call__`` around a recorder instead of the app, for
        :meth:`explain`: (the environ the app would get, or None when the layer answered
        itself; the status; the headers sent).

        It runs on a shallow copy whose attributes named in ``replace`` are swapped for
        side-effect-free stand-ins (a store that only peeks, a refusal that only records), so
        the decision explained is the request path's own, not a second implementation.
        """
        seen: list[Environ] = []
        sent: list[Any] = ["", []]

        def recorder(env: Environ, start_response: StartResponse) -> Iterable[bytes]:
            seen.append(env)
            start_response("200 OK", [])
            return []

        def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            sent[:] = [status, list(headers)]
            return lambda data: None

        detached: Any = _clone(self)
        detached.app = detached._next = recorder
        vars(detached).update(replace)
        body = detached(environ, start_response)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return (seen[0] if seen else None), sent[0], sent[1]

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"{type(self).__name__}({opts})"


def direct_call(app: WSGIApplication) -> WSGIApplication:
    """``app`` itself, or its bound ``__call__`` when that is a Python function.

    CPython calls an instance through a generic slot (a type lookup and a bound method per
    call: about 40 ns on 3.11); calling the prebound method skips that. Layers call
    ``self._next`` instead of ``self.app`` on the request path, through a local
    (``nxt = self._next; return nxt(environ, start_response)``): ``self._next(...)`` compiles
    to a method lookup that CPython 3.11 never specialises for an instance attribute, a local
    is a specialised attribute read. The method is bound when the layer is built: patching the
    inner class's ``__call__`` afterwards does not reach it.
    """
    try:
        call = type(app).__call__
    except AttributeError:  # not callable: fails when called, as before
        return app
    if isinstance(call, FunctionType) and not isinstance(app, FunctionType | MethodType):
        bound: WSGIApplication = MethodType(call, app)
        return bound
    return app


def _unbound(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise ConfigurationError(
        "this layer was built without an app: pass it to compose(app, layer, ...) "
        "or construct it as Layer(app, ...)"
    )


def _clone(layer: _L) -> _L:
    """A shallow copy built attribute by attribute, in the original's order.

    ``copy.copy`` fills the copy's ``__dict__`` in one ``update``, which gives CPython (3.11+)
    a plain dict instead of the class's shared-key instance values, and every attribute read
    on the request path then misses its specialised fast path: measured with callgrind, about
    4,700 more instructions per request through the default stack. Setting the attributes one
    by one keeps the fast layout ``__init__`` built.
    """
    clone: _L = object.__new__(type(layer))
    for name, value in vars(layer).items():
        setattr(clone, name, value)
    return clone

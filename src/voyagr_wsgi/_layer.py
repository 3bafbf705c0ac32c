"""The base every layer shares: built around an app, or unbound for :func:`compose`.

A layer is a WSGI callable built from the app it wraps plus keyword-only options::

    application = SecurityHeaders(app, preset="strict")

The same class called without an app makes an *unbound* layer that :func:`compose` wraps
around whatever sits inside it (first listed = outermost)::

    application = compose(app, ProxyTrust(trusted=["10.0.0.0/8"]), SecurityHeaders())

Subclasses pass their options to :meth:`Layer._init` so :meth:`bind` can rebuild them around
another app; all validation and precomputation happens in the subclass ``__init__``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Self

from ._wsgi import Environ, StartResponse, WSGIApplication
from .errors import ConfigurationError

__all__ = ["Layer"]


class Layer:
    """Base class: ``Layer(app, **options)`` or unbound ``Layer(**options)``."""

    #: services (objects with start/stop/state) this layer owns; compose starts them.
    services: ClassVar[tuple[Any, ...]] = ()

    app: WSGIApplication
    _options: dict[str, Any]

    def _init(self, app: WSGIApplication | None, options: dict[str, Any]) -> None:
        self.app = app if app is not None else _unbound
        self._options = options

    @property
    def bound(self) -> bool:
        return self.app is not _unbound

    def bind(self, app: WSGIApplication) -> Self:
        """A new layer with the same options, wrapped around ``app``."""
        cls: Any = type(self)
        bound: Self = cls(app, **self._options)
        return bound

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"{type(self).__name__}({opts})"


def _unbound(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise ConfigurationError(
        "this layer was built without an app: pass it to compose(app, layer, ...) "
        "or construct it as Layer(app, ...)"
    )

"""PLACEHOLDER: replaced by the issue that builds RateLimit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .._layer import Layer
from .._wsgi import Environ, StartResponse, WSGIApplication


class RateLimit(Layer):
    def __init__(self, app: WSGIApplication | None = None, /, **options: Any) -> None:
        self._init(app, options)

    @classmethod
    def from_settings(cls, settings: Any, context: Any) -> RateLimit | None:
        return None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self.app(environ, start_response)

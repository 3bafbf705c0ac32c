"""WSGI plumbing shared by every layer (PEP 3333).

- type aliases from :mod:`wsgiref.types`;
- :class:`ClosingBody`: wraps a response body without buffering or re-chunking it, calls a
  callback exactly once when the server calls ``close()`` (or the iterator is exhausted and
  the server forgets to), and always passes ``close()`` on to the inner body;
- :func:`simple_response`: a small, fully built response (400/403/429/JSON) for layers that
  answer a request themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "ClosingBody",
    "Environ",
    "Headers",
    "StartResponse",
    "WSGIApplication",
    "json_response",
    "simple_response",
]

Environ = WSGIEnvironment
Headers = list[tuple[str, str]]


class ClosingBody:
    """Iterate an inner body unchanged; on ``close()`` close it, then run ``on_close`` once.

    ``on_close`` runs in a ``finally`` after the inner ``close()``, so accounting happens even
    when the inner close raises. Length and file-wrapper detection are not hidden: servers
    only look for ``wsgi.file_wrapper`` instances on the outermost body, so a layer that must
    keep sendfile working returns the inner body itself when it needs no callback.
    """

    __slots__ = ("_closed", "_iterable", "_iterator", "_on_close")

    def __init__(self, iterable: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._iterable = iterable
        self._iterator: Iterator[bytes] | None = None
        self._on_close = on_close
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = iter(self._iterable)
        return self._iterator

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


def simple_response(
    start_response: StartResponse,
    status: str,
    body: bytes,
    headers: Headers,
) -> list[bytes]:
    """Send a complete small response; ``headers`` must already hold Content-Type."""
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]


def json_response(
    start_response: StartResponse,
    status: str,
    payload: Any,
    *,
    content_type: str = "application/json",
    extra: Headers | None = None,
) -> list[bytes]:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers: Headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
    if extra:
        headers.extend(extra)
    return simple_response(start_response, status, body, headers)

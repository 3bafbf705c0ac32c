"""WSGI apps that exercise the hard parts of PEP 3333, for every layer's tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any


class CloseCounter:
    """A body that records how often ``close()`` was called and what was yielded."""

    def __init__(self, chunks: list[bytes], start: Callable[[], None] | None = None) -> None:
        self.chunks = chunks
        self.start = start
        self.closed = 0
        self.yielded = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.start is not None:
            self.start()  # start_response called lazily, from inside the iterator
        for chunk in self.chunks:
            self.yielded += 1
            yield chunk

    def close(self) -> None:
        self.closed += 1


def lazy_streaming_app(bodies: list[CloseCounter]) -> Callable[..., Any]:
    """Calls start_response only when the body is first iterated; streams 3 chunks."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> CloseCounter:
        body = CloseCounter(
            [b"one", b"two", b"three"],
            start=lambda: start_response("200 OK", [("Content-Type", "text/plain")]),
        )
        bodies.append(body)
        return body

    return app


def exc_info_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Calls start_response, then again with exc_info before any body was sent."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        start_response(
            "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
        )
    return [b"error"]

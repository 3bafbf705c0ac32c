"""WSGI plumbing shared by every layer (PEP 3333).

- type aliases from :mod:`wsgiref.types`;
- :func:`simple_response`: a small, fully built response (400/403/404/JSON) for layers that
  answer a request themselves.

The one layer that must see the end of a response (Metrics, timing until ``close()``) wraps
the body in its own closing wrapper (``metrics/layer.py``), passing ``close()`` on exactly
once and keeping ``wsgi.file_wrapper`` bodies as they are.
"""

from __future__ import annotations

from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Environ", "Headers", "StartResponse", "WSGIApplication", "simple_response"]

Environ = WSGIEnvironment
Headers = list[tuple[str, str]]


def simple_response(
    start_response: StartResponse,
    status: str,
    body: bytes,
    headers: Headers,
) -> list[bytes]:
    """Send a complete small response; ``headers`` must already hold Content-Type."""
    start_response(status, [*headers, ("Content-Length", str(len(body)))])
    return [body]

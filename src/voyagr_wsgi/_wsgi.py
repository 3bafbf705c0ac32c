"""WSGI plumbing shared by every layer (PEP 3333).

- type aliases from :mod:`wsgiref.types`.

Layers that answer a request themselves build the answer with :mod:`voyagr_wsgi.problem`
(RFC 9457 problems and plain JSON), the one place responses are made.

The one layer that must see the end of a response (Metrics, timing until ``close()``) wraps
the body in its own closing wrapper (``metrics/layer.py``), passing ``close()`` on exactly
once and keeping ``wsgi.file_wrapper`` bodies as they are.
"""

from __future__ import annotations

from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["Environ", "Headers", "StartResponse", "WSGIApplication"]

Environ = WSGIEnvironment
Headers = list[tuple[str, str]]

"""Access log and request ids: one record per request on logger ``voyagr_wsgi.access``.

The :class:`~voyagr_wsgi.metrics.layer.Metrics` layer gives every request an id, stores it in
``environ["voyagr.request_id"]`` and returns it as ``X-Request-ID``. An incoming
``X-Request-ID`` (set by a load balancer or an upstream service) is kept only when it matches
``[A-Za-z0-9._-]{1,128}``, so a client cannot inject log lines or huge values; otherwise a
id is generated: a random per-process prefix (re-drawn in forked workers) plus a counter.

Each record has a plain human message and its fields as record attributes (``extra=``), so a
plain formatter prints one readable line and a JSON formatter (python-json-logger, structlog's
stdlib bridge) prints the fields as JSON keys, not JSON inside a string::

    203.0.113.9 "GET /users/7" 200 512B 12.4ms

    method="GET" path="/users/7" route="/users/{id}" status=200 duration_ms=12.4
    bytes=512 user_agent="curl/8.5" referer=None client_ip="203.0.113.9"
    request_id="9f2c0a1b3d4e5f60-42"

``path`` is ``SCRIPT_NAME + PATH_INFO`` without the query string (which may carry tokens);
control characters in it are escaped in the message. ``bytes`` is the response's
``Content-Length``, or the length of a list body, else None (a stream). The library's own
endpoints (``/api/production/...``) are logged too, though not counted in the metrics.

The record is built only when the logger is enabled for INFO, so a disabled access log costs a
level check. ``from voyagr_wsgi.gunicorn import *`` routes it (with timestamps) to gunicorn's
stderr unless the app configures logging itself; elsewhere route it like any stdlib logger:
``logging.getLogger("voyagr_wsgi.access")`` with a handler at level INFO.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
from collections.abc import Callable
from random import getrandbits
from typing import Any

from .._wsgi import Environ
from ..request import client_ip

__all__ = [
    "HEADER",
    "access_logger",
    "emit",
    "new_request_id",
    "request_id",
    "response_size",
    "valid_request_id",
]

access_logger = logging.getLogger("voyagr_wsgi.access")
HEADER = "X-Request-ID"
valid_request_id = re.compile(r"[A-Za-z0-9._-]{1,128}\Z").match


class _Ids:
    """``<16 random hex>-<counter>``: unique per process, re-drawn in a forked child."""

    prefix = ""
    # partial(next, count): a vectorcall, cheaper than calling count().__next__ (a method
    # wrapper); both are one C call, atomic under the GIL
    counter: Callable[[], int] = functools.partial(next, itertools.count())

    @classmethod
    def reset(cls) -> None:
        cls.prefix = f"{getrandbits(64):016x}-"
        cls.counter = functools.partial(next, itertools.count(1))


def new_request_id() -> str:
    prefix = _Ids.prefix
    if not prefix:
        _Ids.reset()
        os.register_at_fork(after_in_child=_Ids.reset)
        prefix = _Ids.prefix
    return prefix + str(_Ids.counter())


def request_id(environ: Environ, *, trust_incoming: bool = True) -> str:
    """The incoming ``X-Request-ID`` when it is well-formed, else a new id."""
    incoming = environ.get("HTTP_X_REQUEST_ID") if trust_incoming else None
    if incoming and valid_request_id(incoming):
        return incoming  # type: ignore[no-any-return]
    return new_request_id()


def emit(
    environ: Environ,
    method: str,
    route: str,
    status: int,
    duration_s: float,
    rid: str | None,
    size: int | None = None,
) -> None:
    """Log one request (cheap no-op when the logger is not enabled for INFO)."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    shown = path if path.isprintable() else json.dumps(path)[1:-1]
    ip = client_ip(environ)
    duration_ms = round(duration_s * 1000.0, 3)
    fields = {
        "method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        "bytes": size,
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "referer": environ.get("HTTP_REFERER"),
        "client_ip": ip,
        "request_id": rid,
    }
    size_text = "-" if size is None else f"{size}B"
    access_logger.info(
        '%s "%s %s" %d %s %.1fms', ip, method, shown, status, size_text, duration_ms, extra=fields
    )


def response_size(headers: Any, body: Any) -> int | None:
    """``Content-Length`` of the response headers, else the length of a list body."""
    for name, value in headers or ():
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return None
    if type(body) is list:
        return sum(len(chunk) for chunk in body)
    return None

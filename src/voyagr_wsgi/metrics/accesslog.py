"""Access log and request ids: one JSON line per request on logger ``voyagr_wsgi.access``.

The :class:`~voyagr_wsgi.metrics.layer.Metrics` layer gives every request an id, stores it in
``environ["voyagr.request_id"]`` and returns it as ``X-Request-ID``. An incoming
``X-Request-ID`` (set by a load balancer or an upstream service) is kept only when it matches
``[A-Za-z0-9._-]{1,128}``, so a client cannot inject log lines or huge values; otherwise a
id is generated: a random per-process prefix (re-drawn in forked workers) plus a counter.

The line is built only when the logger is enabled for INFO, so a disabled access log costs a
level check. Example line::

    {"time":"2026-01-01T00:00:00.123Z","method":"GET","route":"/users/{id}","status":200,
     "duration_ms":12.4,"client_ip":"203.0.113.9","request_id":"9f2c0a1b3d4e5f60-42"}

Route it like any stdlib logger, e.g. ``logging.getLogger("voyagr_wsgi.access").addHandler
(logging.StreamHandler())`` with level INFO; gunicorn's own access log can then be turned off.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from random import getrandbits

from .._wsgi import Environ
from ..request import client_ip

__all__ = [
    "HEADER",
    "access_logger",
    "emit",
    "new_request_id",
    "request_id",
    "valid_request_id",
]

access_logger = logging.getLogger("voyagr_wsgi.access")
HEADER = "X-Request-ID"
valid_request_id = re.compile(r"[A-Za-z0-9._-]{1,128}\Z").match


class _Ids:
    """``<16 random hex>-<counter>``: unique per process, re-drawn in a forked child."""

    prefix = ""
    counter: Callable[[], int] = itertools.count().__next__

    @classmethod
    def reset(cls) -> None:
        cls.prefix = f"{getrandbits(64):016x}-"
        cls.counter = itertools.count(1).__next__


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
    environ: Environ, method: str, route: str, status: int, duration_s: float, rid: str | None
) -> None:
    """Log one request (cheap no-op when the logger is not enabled for INFO)."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    line = {
        "time": stamp,
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(duration_s * 1000.0, 3),
        "client_ip": client_ip(environ),
        "request_id": rid,
    }
    access_logger.info(json.dumps(line, separators=(",", ":")))

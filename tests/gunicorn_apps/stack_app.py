"""``compose(pid_app, Settings.from_env())``: the full stack the environment asks for.

``GET /`` answers the serving worker's pid (text/plain), so tests see which worker served.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from voyagr_wsgi import Settings, compose


def pid_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = compose(pid_app, Settings.from_env())

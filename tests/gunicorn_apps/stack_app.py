"""``compose(pid_app, Settings.from_env())``: the full stack the environment asks for.

``GET /`` answers the serving worker's pid (text/plain), so tests see which worker served;
``GET /fail`` does the same with a 500; ``?sleep=0.05`` keeps the worker busy that long, so
concurrent requests spread over the workers.
With ``VOYAGR_TEST_LOG`` set, every process logs INFO lines ``<pid> <logger> <message>`` there.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from voyagr_wsgi import Settings, compose

if os.environ.get("VOYAGR_TEST_LOG"):  # "<pid> <logger> <message>" lines the tests read
    _handler = logging.FileHandler(os.environ["VOYAGR_TEST_LOG"])
    _handler.setFormatter(logging.Formatter("%(process)d %(name)s %(message)s (%(asctime)s)"))
    logging.getLogger("voyagr_wsgi").addHandler(_handler)  # whatever the config did to root
    logging.getLogger("voyagr_wsgi").setLevel(logging.INFO)


def pid_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("QUERY_STRING", "").startswith("sleep="):
        time.sleep(float(environ["QUERY_STRING"][6:]))  # keeps this worker busy
    body = str(os.getpid()).encode()
    status = "500 Internal Server Error" if environ.get("PATH_INFO") == "/fail" else "200 OK"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = compose(pid_app, Settings.from_env())

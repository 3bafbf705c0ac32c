"""Apps and a loopback server for the metrics tests (also the gunicorn test's app module).

``gunicorn metrics_apps:application`` composes :func:`demo_app` from the environment
(``VOYAGR_STATE_DIR``); :func:`serve` runs any WSGI app on a threaded loopback server.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from voyagr_wsgi.metrics import cache_stats, track_query, track_upstream


def demo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Routes with templates, an upstream, a cache, a slow query, errors and exceptions."""
    path = environ.get("PATH_INFO", "/")
    if path.startswith("/users/"):
        environ["voyagr.route"] = "/users/{id}"
        user = path.rsplit("/", 1)[-1]
        cache = cache_stats("users")
        if user.isdigit() and int(user) % 4 == 0:
            cache.hit()
        else:
            cache.miss()
        with track_upstream("osrm") as call:
            if user.endswith("7"):
                call.fail()
        status = "200 OK"
    elif path == "/report":
        environ["voyagr.route"] = "/report"
        with track_query("SELECT * FROM trips WHERE user = 'x' AND id = 42"):
            pass
        status = "200 OK"
    elif path == "/error":
        environ["voyagr.route"] = "/error"
        status = "503 Service Unavailable"
    elif path == "/boom":
        environ["voyagr.route"] = "/boom"
        raise RuntimeError("boom: demo exception")
    else:
        status = "404 Not Found"
    body = f"pid {os.getpid()}\n".encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextlib.contextmanager
def serve(app: Callable[..., Any], port: int) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1:port in a thread; yields the base URL."""
    server = make_server("127.0.0.1", port, app, _ThreadingServer, _Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics-test-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@functools.cache
def _application() -> Any:
    from voyagr_wsgi import Settings, compose

    return compose(demo_app, Settings.from_env())


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    """The composed demo app, built on first use in each worker."""
    return _application()(environ, start_response)

"""The stack a user would otherwise assemble from popular packages, as plain WSGI wrappers.

Each wrapper is written the way a careful user would (headers precomputed once, a private
CollectorRegistry, the rate-limit key from the (ProxyFix-resolved) REMOTE_ADDR, headers from
``get_window_stats`` like Flask-Limiter's), so the comparison is fair to the peers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def proxy_fix(app: App) -> App:
    from werkzeug.middleware.proxy_fix import ProxyFix

    return ProxyFix(app, x_for=1, x_proto=1)  # type: ignore[arg-type,return-value]


def secure_headers(app: App) -> App:
    import secure

    defaults = list(secure.Secure.with_default_headers().headers.items())

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers = headers + [(n, v) for n, v in defaults if n.lower() not in present]
            return start_response(status, headers, exc_info)

        return app(environ, sr)

    return middleware


def limits_layer(app: App, strategy: str = "fixed", spec: str = "1000000000/minute") -> App:
    from limits import parse
    from limits.storage import MemoryStorage
    from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

    storage = MemoryStorage()
    limiter = (FixedWindowRateLimiter if strategy == "fixed" else MovingWindowRateLimiter)(storage)
    item = parse(spec)
    limit = str(item.amount)

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = environ.get("REMOTE_ADDR", "")
        if not limiter.hit(item, key):
            start_response("429 Too Many Requests", [("Content-Type", "text/plain")])
            return [b"too many requests"]
        reset, remaining = limiter.get_window_stats(item, key)
        extra = [
            ("X-RateLimit-Limit", limit),
            ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(int(reset))),
        ]

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, headers + extra, exc_info)

        return app(environ, sr)

    return middleware


def prometheus_layer(app: App) -> App:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from werkzeug.wsgi import ClosingIterator

    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total", "Requests", ["method", "path", "status"], registry=registry
    )
    duration = Histogram(
        "http_request_duration_seconds", "Duration", ["method", "path"], registry=registry
    )

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        captured: list[str] = []

        def sr(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured[:] = [status]
            return start_response(status, headers, exc_info)

        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")

        def done() -> None:
            code = captured[0].split(" ", 1)[0] if captured else "500"
            requests.labels(method, path, code).inc()
            duration.labels(method, path).observe(time.perf_counter() - started)

        return ClosingIterator(app(environ, sr), [done])

    return middleware


def composite(app: App) -> App:
    """ProxyFix -> prometheus_client -> secure -> limits (fixed window) -> app."""
    return proxy_fix(prometheus_layer(secure_headers(limits_layer(app))))

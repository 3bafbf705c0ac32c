"""Helpers for the alert tests: a scripted loopback HTTP receiver, a fake clock, fake metrics.

Imported by the other ``test_alert*`` / ``test_channels*`` modules; the one test here checks
the receiver itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.request import Request, urlopen

import pytest

from voyagr_wsgi.alerts.model import Alert, Notification


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # block until the receiver is closed
    drip_s: float = 0.0  # send the answer one byte every drip_s seconds (a slow-loris peer)


class Receiver:
    """An HTTP server on 127.0.0.1 that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        self.release = threading.Event()
        self._cv = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._cv:
                    receiver.requests.append(
                        Received("POST", self.path, dict(self.headers.items()), body)
                    )
                    reply = receiver.script.pop(0) if receiver.script else receiver.default
                    receiver._cv.notify_all()
                if reply.hang:
                    receiver.release.wait(30)
                    return
                if reply.drip_s:
                    raw = (
                        f"HTTP/1.1 {reply.status} OK\r\nContent-Length: {len(reply.body)}\r\n"
                        "\r\n"
                    ).encode() + reply.body
                    for i in range(len(raw)):
                        if receiver.release.wait(reply.drip_s):
                            return
                        try:
                            self.wfile.write(raw[i : i + 1])
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Bounded polling for ``count`` requests (a real peer, so real time)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
                self._cv.wait(left)
            return list(self.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def serve() -> Iterator[Receiver]:
    """Body of a ``receiver`` fixture: start, yield, always close."""
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


class FakeClock:
    """A monotonic clock whose ``sleep`` advances time instantly and is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeMetrics:
    """A metrics source shaped like ``MetricsReader.window_snapshot``."""

    def __init__(self) -> None:
        self.snap = snapshot()
        self.windows: list[float] = []

    def window_snapshot(self, window_s: float) -> dict[str, Any]:
        self.windows.append(window_s)
        return {**self.snap, "window_s": window_s}


def snapshot(
    total: int = 100,
    errors: int = 0,
    p95: float | None = 0.1,
    caches: dict[str, tuple[int, int]] | None = None,
    upstreams: dict[str, tuple[int, int, int]] | None = None,
    slow_queries: int = 0,
) -> dict[str, Any]:
    def rate(a: int, b: int) -> float | None:
        return a / b if b else None

    return {
        "window_s": 300.0,
        "requests": {"total": total, "errors": errors, "error_rate": rate(errors, total)},
        "latency_s": {"p50": p95, "p95": p95, "p99": p95, "avg": p95, "max": p95},
        "caches": {
            n: {"hits": h, "misses": m, "hit_rate": rate(h, h + m)}
            for n, (h, m) in (caches or {}).items()
        },
        "upstreams": {
            n: {"calls": c, "errors": e, "timeouts": t, "failure_rate": rate(e + t, c)}
            for n, (c, e, t) in (upstreams or {}).items()
        },
        "slow_queries": slow_queries,
    }


def notification(
    status: str = "firing",
    *,
    severity: str = "critical",
    summary: str = "Error rate 7.4% (74/1000) over 300s (threshold 5.0%)",
    scope: str = "",
    suppressed: int = 0,
    reason: str = "new_alert",
    description: str = "",
) -> Notification:
    alert = Alert(
        "high_error_rate",
        summary,
        severity=severity,  # type: ignore[arg-type]
        scope=scope,
        description=description,
        value=0.074,
        threshold=0.05,
    )
    return Notification(
        alert,
        status,  # type: ignore[arg-type]
        reason,  # type: ignore[arg-type]
        starts_at=1767225600.0,
        sent_at=1767225660.0,
        ends_at=1767225660.0 if status == "resolved" else None,
        suppressed=suppressed,
        service="api",
        instance="api-prod-1",
        dashboard_url="https://api.example.com/_voyagr/dashboard",
    )


def post(url: str, body: bytes = b"{}") -> int:
    with urlopen(Request(url, data=body, method="POST"), timeout=5) as response:
        return int(response.status)


Poll = Callable[[], bool]


def poll(predicate: Poll, timeout: float = 10.0, what: str = "condition") -> None:
    """Bounded polling for something a real peer or thread does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_receiver_answers_from_its_script(receiver: Receiver) -> None:
    receiver.script = [Reply(201, b"created")]
    assert post(receiver.url()) == 201
    assert post(receiver.url()) == 200
    assert [r.path for r in receiver.wait_for(2)] == ["/hook", "/hook"]

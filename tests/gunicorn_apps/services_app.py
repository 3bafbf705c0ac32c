"""A bare Stack with two tiny services that leave traces in files, for the failover tests.

- ``tick`` (singleton): appends ``<pid> <wall time>`` to ``$VOYAGR_STATE_DIR/ticks`` every
  ``TICK_S`` seconds while it runs; writes ``stop <pid> <timeout>`` to ``stops`` on stop().
- ``worker`` (per process): appends ``<pid>`` to ``workers`` when started.

``GET /`` answers the serving pid, so a test can see which worker served it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from voyagr_wsgi import Stack

STATE_DIR = os.environ["VOYAGR_STATE_DIR"]
TICK_S = float(os.environ.get("TICK_S", "0.1"))


def _append(name: str, line: str) -> None:
    with open(os.path.join(STATE_DIR, name), "a", encoding="ascii") as handle:
        handle.write(line + "\n")


class TickService:
    name = "tick"
    singleton = True

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tick", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            _append("ticks", f"{os.getpid()} {time.time():.3f}")
            self._stop.wait(TICK_S)

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        _append("stops", f"stop {os.getpid()} {timeout}")

    def state(self) -> dict[str, Any]:
        return {"running": self._thread is not None and self._thread.is_alive()}


class WorkerService:
    name = "worker"
    singleton = False

    def start(self) -> None:
        _append("workers", str(os.getpid()))

    def stop(self, timeout: float | None = None) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {}


def pid_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = Stack(pid_app, services=[TickService(), WorkerService()], state_dir=STATE_DIR)


class _Framework:
    """A framework app that holds the stack as ``wsgi_app``, the way Flask apps do."""

    def __init__(self) -> None:
        self.wsgi_app = Stack(
            pid_app, services=[TickService(), WorkerService()], state_dir=STATE_DIR
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.wsgi_app(environ, start_response)


framework_app = _Framework()

"""Shared helpers for the rate-limit tests: a fake clock and a real redis-server."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from conftest import require_tool
from gunicorn_apps.harness import start_redis, stop_process


class FakeClock:
    """A monotonic clock tests move by hand: tests never sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class RedisServer:
    """A real redis-server on a loopback port; ``start()`` / ``kill()`` / ``stop()``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.binary = require_tool("redis-server", "apt-get install redis-server")
        self.dir = tempfile.mkdtemp(prefix="voyagr-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = start_redis(self.binary, self.port, self.dir)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def redis_server(port: int) -> Iterator[RedisServer]:
    server = RedisServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["FakeClock", "RedisServer", "redis_server"]

"""Background services and the election of the one process that runs them.

A *service* is anything with ``name``, ``singleton``, ``start()``, ``stop(timeout)`` and
``state()``. Nothing starts at import or in ``__init__``: :meth:`Stack.start` (called by the
gunicorn hooks, or by you) hands the services to a :class:`Supervisor`, which

- starts the per-process services (``singleton = False``, e.g. a metrics flusher) at once;
- starts the singleton services (``singleton = True``: the backup scheduler, alert evaluation
  and dispatch) only in the process that holds an exclusive ``flock`` on
  ``<state_dir>/services.lock``. The other processes retry every ``retry_s`` seconds, so when
  the holder dies (the kernel drops its lock) another process takes over within a few seconds.

``flock`` locks belong to the open file description, so they are released when the process
dies, even by SIGKILL, and are never inherited in a useful way across ``fork`` by a process
that did not take them (start services after the fork: see ``voyagr_wsgi.gunicorn``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

__all__ = ["FileLock", "Service", "Supervisor"]

log = logging.getLogger("voyagr_wsgi.services")


@runtime_checkable
class Service(Protocol):
    """A background service: started and stopped by the stack, reports its state."""

    name: str
    singleton: bool

    def start(self) -> None: ...

    def stop(self, timeout: float | None = None) -> None: ...

    def state(self) -> dict[str, Any]: ...


class FileLock:
    """A non-blocking exclusive ``flock`` on a file; released on close or process death."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Supervisor:
    """Start per-process services now, singleton services once this process is elected."""

    def __init__(
        self,
        services: Iterable[Service],
        *,
        lock_path: str,
        retry_s: float = 2.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = list(services)
        self.now = now
        self.lock = FileLock(lock_path)
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started: list[Service] = []
        self._running = False
        self._mutex = threading.Lock()

    @property
    def leader(self) -> bool:
        return self.lock.held

    def start(self) -> None:
        with self._mutex:
            if self._running:
                return
            self._running = True
            self._stop.clear()
            for service in self.services:
                if not service.singleton:
                    self._start(service)
            if any(s.singleton for s in self.services):
                self._thread = threading.Thread(
                    target=self._elect, name="voyagr-leader-election", daemon=True
                )
                self._thread.start()

    def _start(self, service: Service) -> None:
        service.start()
        self._started.append(service)
        log.info("service %s started in pid %d", service.name, os.getpid())

    def _elect(self) -> None:
        while not self._stop.is_set():
            if self.lock.try_acquire():
                log.info("pid %d holds %s: running singleton services", os.getpid(), self.lock.path)
                with self._mutex:
                    if self._stop.is_set():
                        break
                    for service in self.services:
                        if service.singleton:
                            self._start(service)
                return
            self._stop.wait(self.retry_s)

    def stop(self, timeout: float | None = None) -> None:
        """Stop every started service; ``timeout`` bounds the whole stop, not each one."""
        deadline = None if timeout is None else self.now() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - self.now())

        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(remaining())
        with self._mutex:
            for service in reversed(self._started):
                try:
                    service.stop(remaining())
                except Exception:
                    log.exception("service %s failed to stop cleanly", service.name)
            self._started.clear()
            self._thread = None
            self._running = False
            self.lock.release()

    def state(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "leader": self.leader,
            "services": {s.name: s.state() for s in self.services},
        }

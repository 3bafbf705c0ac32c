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

**Across machines** (``SERVICES_LEASE_URL=redis://...``, opt-in): the flock still picks one
candidate per machine, and that candidate also needs a :class:`~voyagr_wsgi.lease.RedisLease`
per singleton, named by the service's ``lease_name`` (``backups:<set>``) or its ``name``
(``alerts``). A singleton runs only while its process holds both: it is started when the
lease is acquired and stopped when a renewal fails past the deadline (the lease wakes the
election thread); standbys retry every ``retry_s`` with jitter (x0.5-1.5). A service with a
``claim`` attribute (the backup scheduler) gets the lease's slot claim, so one schedule slot
runs once fleet-wide. :meth:`Supervisor.state` gains ``lease`` (holder, epoch, last renewal
per name) and :meth:`Supervisor.health_checks` reports ``services:lease`` (the flock holder
publishes its view in ``<state_dir>/services-lease.json`` for the other workers). Without
the setting nothing changes: no Redis, no lease, the flock alone elects.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from ._jsonfile import write_json
from .health import Check

__all__ = ["FileLock", "Lease", "LeaseFactory", "Service", "Supervisor", "lease_name"]

_LEASE_FILE = "services-lease.json"
_LEASE_SERIES = (
    ("voyagr_services_lease_held", "held", "1 when this machine holds the lease"),
    ("voyagr_services_lease_epoch", "epoch", "fencing epoch of the last acquisition"),
    (
        "voyagr_services_lease_last_renewal_timestamp_seconds",
        "last_renewal_ts",
        "when the holder last renewed the lease (epoch seconds)",
    ),
)

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


class Lease(Protocol):
    """What the Supervisor needs of a lease (:class:`voyagr_wsgi.lease.RedisLease`)."""

    name: str

    @property
    def held(self) -> bool: ...

    def try_acquire(self) -> int | None: ...

    def remaining(self) -> float: ...

    def release(self) -> None: ...

    def claim(self, slot: int, ttl_s: float) -> bool: ...

    def state(self) -> dict[str, Any]: ...


#: builds the lease of one name; ``on_lost`` wakes the Supervisor when a renewal fails
LeaseFactory = Callable[[str, Callable[[], None]], Lease]


class Supervisor:
    """Start per-process services now, singleton services once this process is elected."""

    def __init__(
        self,
        services: Iterable[Service],
        *,
        lock_path: str,
        retry_s: float = 2.0,
        now: Callable[[], float] = time.monotonic,
        lease: LeaseFactory | None = None,
        stop_timeout_s: float = 30.0,  # seconds a singleton gets to stop after losing its lease
    ) -> None:
        self.services = list(services)
        self.now = now
        self.lock = FileLock(lock_path)
        self.retry_s = retry_s
        self._lease_factory = lease
        self._leases: dict[str, Lease] = {}
        self._stop_timeout_s = stop_timeout_s
        self._state_path = os.path.join(os.path.dirname(os.path.abspath(lock_path)), _LEASE_FILE)
        self._stop = threading.Event()
        self._wakeup = threading.Event()
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
                if self._lease_factory is None:
                    log.info(
                        "pid %d holds %s: running singleton services", os.getpid(), self.lock.path
                    )
                    with self._mutex:
                        if self._stop.is_set():
                            break
                        for service in self.services:
                            if service.singleton:
                                self._start(service)
                    return
                self._reconcile()
            self._wakeup.wait(self._pause())
            self._wakeup.clear()

    # -- the fleet lease (SERVICES_LEASE_URL) ---------------------------------------------------
    def _lease(self, service: Service) -> Lease:
        name = lease_name(service)
        lease = self._leases.get(name)
        if lease is None:
            factory = self._lease_factory
            if factory is None:
                raise RuntimeError("no lease factory: SERVICES_LEASE_URL is not set")
            lease = self._leases[name] = factory(name, self._wakeup.set)
        return lease

    def _reconcile(self) -> None:
        """Run each singleton exactly while its lease is held (stop it on loss, start it on
        acquisition); standbys try to acquire."""
        with self._mutex:
            if self._stop.is_set():
                return
            for service in self.services:
                if not service.singleton:
                    continue
                lease = self._lease(service)
                running = any(s is service for s in self._started)
                if lease.held:
                    if not running:
                        self._start_leased(service, lease)
                    continue
                if running:
                    log.warning("lease %s lost: stopping service %s", lease.name, service.name)
                    self._started = [s for s in self._started if s is not service]
                    try:
                        service.stop(self._stop_timeout_s)
                    except Exception:
                        log.exception("service %s failed to stop cleanly", service.name)
                if lease.try_acquire() is not None:
                    self._start_leased(service, lease)
        self._publish()

    def _start_leased(self, service: Service, lease: Lease) -> None:
        if hasattr(service, "claim"):
            service.claim = lease.claim  # one run per schedule slot across the fleet
        self._start(service)

    def _pause(self) -> float:
        held = [lease.remaining() for lease in self._leases.values() if lease.held]
        if held:
            return max(0.01, min(self.retry_s, min(held) + 0.01))
        return self.retry_s * random.uniform(0.5, 1.5)  # jitter: standbys spread out

    def _publish(self) -> None:
        """The flock holder's view of the leases, for health in the other processes."""
        doc = {"pid": os.getpid(), "updated_ts": time.time(), "leases": self.lease_state()}
        try:
            write_json(self._state_path, doc)
        except OSError as exc:
            log.warning("cannot write %s: %s", self._state_path, type(exc).__name__)

    def lease_state(self) -> dict[str, dict[str, Any]]:
        return {name: lease.state() for name, lease in sorted(self._leases.items())}

    def lease_view(self) -> tuple[dict[str, dict[str, Any]], object] | None:
        """``(states by lease name, pid)`` as this machine's elected process sees them (read
        from its published file in the other processes); None when that file is stale."""
        if self.lock.held:
            return self.lease_state(), os.getpid()
        doc = _read_json(self._state_path) or {}
        age = time.time() - float(doc.get("updated_ts") or 0.0)
        if not doc.get("leases") or age > max(10.0, 5 * self.retry_s):
            return None
        return doc["leases"], doc.get("pid", "?")

    def health_checks(self) -> list[Check]:
        """``services:lease``: one check per lease name (holder, epoch, last renewal)."""
        if self._lease_factory is None:
            return []
        view = self.lease_view()
        if view is None:
            return [
                Check(
                    "services:lease",
                    "warn",
                    output="no process on this machine reports the services lease",
                )
            ]
        states, pid = view
        return [_lease_check(name, state, pid) for name, state in states.items()]

    def lease_json(self) -> dict[str, Any]:
        """The ``lease`` section of the metrics JSON: the states by lease name."""
        view = self.lease_view()
        return {} if view is None else view[0]

    def lease_prometheus(self) -> str:
        """``voyagr_services_lease_held``, ``_epoch`` and ``_last_renewal_timestamp_seconds``
        per lease (gauges, label ``lease``)."""
        states = self.lease_json()
        lines = []
        for metric, key, help_text in _LEASE_SERIES:
            lines.append(f"# HELP {metric} {help_text}\n# TYPE {metric} gauge\n")
            for name, state in sorted(states.items()):
                value = state.get(key)
                if value is None:
                    continue
                label = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                number = float(value)
                text = str(int(number)) if number.is_integer() else repr(number)
                lines.append(f'{metric}{{lease="{label}"}} {text}\n')
        return "".join(lines)

    def stop(self, timeout: float | None = None) -> None:
        """Stop every started service; ``timeout`` bounds the whole stop, not each one."""
        deadline = None if timeout is None else self.now() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - self.now())

        self._stop.set()
        self._wakeup.set()
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
            for lease in self._leases.values():
                lease.release()
            self.lock.release()

    def state(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "pid": os.getpid(),
            "leader": self.leader,
            "services": {s.name: s.state() for s in self.services},
        }
        if self._lease_factory is not None:
            doc["lease"] = self.lease_state()
        return doc


def lease_name(service: Service) -> str:
    """The lease a singleton runs under: its ``lease_name`` (``backups:<set>``) or name."""
    return str(getattr(service, "lease_name", service.name))


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _lease_check(name: str, state: dict[str, Any], pid: object) -> Check:
    error = state.get("last_error")
    held = bool(state.get("held"))
    holder = state.get("holder") or "nobody"
    if error:
        output: str | None = f"lease {name}: {error}"
    else:
        output = None
    where = f"held by this machine (pid {pid})" if held else f"standby; holder {holder}"
    return Check(
        "services:lease",
        "warn" if error else "pass",
        observed_value=int(state.get("epoch") or state.get("max_epoch") or 0),
        observed_unit="epoch",
        output=output or where,
        component_id=name,
        component_type="datastore",
    )

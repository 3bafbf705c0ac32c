"""Metrics merged across the workers of a pre-fork server (gunicorn, uWSGI).

Each worker keeps its own :class:`~.registry.Registry`. Its :class:`SnapshotWriter` service
(a per-process service that ``Stack.start()`` runs in every worker) writes the registry's
snapshot every second, and on stop, to ``<state_dir>/metrics/<pid>.json`` (temp file +
``os.replace``, so readers never see half a file), in the named-key JSON form of
:func:`.snapshot.to_json`; a file of another release's format is skipped with a warning. A
reader (the JSON endpoint, the
Prometheus scrape, the alert rules) first writes its own snapshot, then merges every file:

- counters never go backwards: every value a reader sees was flushed to a file, files only
  grow, and a dead worker's file is *folded* into ``archive.json`` (its counters, slots and
  recent errors; not its gauges) under an exclusive ``flock`` while readers hold a shared
  one, so a scrape never sees a worker both gone and not yet archived;
- files do not pile up: gunicorn's ``child_exit`` hook (in the master) calls
  :func:`worker_exited`, and any reader folds the file of a pid that no longer exists;
- a recycled pid is recognised by the ``instance`` token in the file and archived first.

Hooks for ``gunicorn.conf.py``::

    from voyagr_wsgi.metrics import multiprocess
    def on_starting(server): multiprocess.reset(STATE_DIR)              # fresh totals per run
    def child_exit(server, worker): multiprocess.worker_exited(STATE_DIR, worker.pid)
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

from .._jsonfile import write_json
from .merge import as_archive, merge
from .registry import Registry
from .snapshot import Snapshot, from_json, to_json

__all__ = ["SnapshotWriter", "read_merged", "reset", "worker_exited", "write_snapshot"]

log = logging.getLogger("voyagr_wsgi.metrics")
ARCHIVE = "archive.json"


def metrics_dir(state_dir: str) -> str:
    return os.path.join(state_dir, "metrics")


@contextlib.contextmanager
def _flock(state_dir: str, mode: int) -> Iterator[None]:
    directory = metrics_dir(state_dir)
    os.makedirs(directory, exist_ok=True)
    fd = os.open(os.path.join(directory, "archive.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # releases the lock


def _load(path: str) -> Snapshot | None:
    try:
        with open(path, encoding="utf-8") as f:
            return from_json(json.load(f))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:  # torn, foreign or another version
        log.warning("ignoring unreadable metrics file %s: %s", path, exc)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- files ------------------------------------------------------------------------------------
def write_snapshot(registry: Registry) -> Snapshot:
    """Write this process's snapshot atomically; returns it."""
    state_dir = registry.state_dir
    if state_dir is None:
        return registry.snapshot()
    path = os.path.join(metrics_dir(state_dir), f"{registry.pid}.json")
    with registry.write_lock:
        if registry.claimed != registry.instance:  # first write of this process life
            os.makedirs(metrics_dir(state_dir), exist_ok=True)
            old = _load(path)
            if old is not None and old.instance != registry.instance:
                _fold(state_dir, [path], registry)  # a previous process had our pid
            registry.claimed = registry.instance
        snap = registry.snapshot()
        write_json(path, to_json(snap))
    return snap


def _fold(state_dir: str, paths: list[str], registry: Registry | None = None) -> None:
    slot_s = registry.slot_s if registry else 5.0
    retention_s = registry.retention_s if registry else 900.0
    now = registry.now() if registry else time.time()
    oldest = int((now - retention_s) // slot_s)
    with _flock(state_dir, fcntl.LOCK_EX):
        archive_path = os.path.join(metrics_dir(state_dir), ARCHIVE)
        found = [s for s in (_load(p) for p in paths) if s is not None]
        if not found:
            return
        parts = [as_archive(s, oldest) for s in found]
        archive = _load(archive_path)
        if archive is not None:
            parts.insert(0, archive)
        limit = registry.max_routes if registry else 200
        write_json(archive_path, to_json(as_archive(merge(parts, max_routes=limit), oldest)))
        for p in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
    log.info("archived metrics of %d exited worker(s)", len(found))


def worker_exited(state_dir: str, pid: int) -> None:
    """Fold a finished worker's file into the archive (gunicorn ``child_exit`` hook)."""
    _fold(state_dir, [os.path.join(metrics_dir(state_dir), f"{pid}.json")])


def reset(state_dir: str) -> None:
    """Remove every metrics file (gunicorn ``on_starting``: totals start at zero per run)."""
    shutil.rmtree(metrics_dir(state_dir), ignore_errors=True)


def read_merged(registry: Registry) -> Snapshot:
    """Own snapshot (flushed first) + every other worker's file + the archive, merged."""
    own = write_snapshot(registry)
    state_dir = registry.state_dir
    if state_dir is None:
        return merge([own], registry.recent, registry.max_routes)
    directory = metrics_dir(state_dir)
    snaps = [own]
    dead: list[str] = []
    with _flock(state_dir, fcntl.LOCK_SH):
        for name in os.listdir(directory):
            if not name.endswith(".json"):
                continue
            path = os.path.join(directory, name)
            if name == ARCHIVE:
                archive = _load(path)
                if archive is not None:
                    snaps.append(archive)
                continue
            pid = name[:-5]
            if not pid.isdigit() or int(pid) == registry.pid:
                continue
            snap = _load(path)
            if snap is None:
                continue
            if not _alive(int(pid)):
                dead.append(path)
                snap = as_archive(snap, -1)
            snaps.append(snap)
    if dead:
        _fold(state_dir, dead, registry)
    return merge(snaps, registry.recent, registry.max_routes)


class SnapshotWriter:
    """Per-process service: flush the registry every ``interval_s`` seconds and on stop."""

    singleton = False

    def __init__(self, registry: Registry, *, interval_s: float = 1.0) -> None:
        self.name = "metrics-flush"
        self.registry = registry
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self.registry.shared = True
        self._stop.clear()
        self._flush()
        self._thread = threading.Thread(target=self._run, name="voyagr-metrics-flush", daemon=True)
        self._thread.start()
        atexit.register(self._flush)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._flush()

    def _flush(self) -> None:
        try:
            write_snapshot(self.registry)
            self.writes += 1
            self.last_error = None
        except OSError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("metrics snapshot not written: %s", self.last_error)

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            self._flush()
        atexit.unregister(self._flush)

    def state(self) -> dict[str, Any]:
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "writes": self.writes,
            "last_error": self.last_error,
        }

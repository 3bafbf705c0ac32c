"""Metrics merged across the workers of a pre-fork server (gunicorn, uWSGI).

Each worker keeps its own :class:`~.registry.Registry`. Its :class:`SnapshotWriter` service
(a per-process service that ``Stack.start()`` runs in every worker) writes the registry's
snapshot every second, and on stop, to ``<state_dir>/metrics/<pid>.json`` (temp file +
``os.replace``, so readers never see half a file). A reader (the JSON endpoint, the
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

from .registry import OVERFLOW, Registry

__all__ = ["SnapshotWriter", "merge", "read_merged", "reset", "worker_exited", "write_snapshot"]

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


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
            return data
    except FileNotFoundError:
        return None
    except ValueError:
        log.warning("ignoring unreadable metrics file %s", path)
        return None


def _dump(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- merging ----------------------------------------------------------------------------------
def _add(into: list[Any], more: list[Any], max_at: int = -1) -> None:
    if len(into) < len(more):
        into.extend([0] * (len(more) - len(into)))
    for i, value in enumerate(more):
        into[i] = max(into[i], value) if i == max_at else into[i] + value


def _add_map(into: dict[str, list[Any]], more: dict[str, list[Any]], max_at: int = -1) -> None:
    for key, values in more.items():
        _add(into.setdefault(key, []), values, max_at)


def merge(snaps: list[dict[str, Any]], recent: int = 50, max_routes: int = 200) -> dict[str, Any]:
    """Sum counters, sum live gauges, keep the newest ``recent`` errors and slow queries.

    Each worker caps its routes, but two workers may admit different ones: the merge keeps
    the ``max_routes`` busiest and folds the rest into ``"__other__"``, so the archive of
    many recycled workers stays bounded.
    """
    out: dict[str, Any] = {
        "version": 1, "started_at": min((s["started_at"] for s in snaps), default=0.0),
        "written_at": max((s["written_at"] for s in snaps), default=0.0),
        "workers": sum(1 for s in snaps if s.get("pid") is not None),
        "in_flight": 0, "total": 0, "errors": 0, "overflow": 0, "ring": [], "exceptions": {},
        "recent_errors": [], "caches": {}, "upstreams": {}, "db": {}, "recent_slow": [],
    }  # fmt: skip
    series: dict[tuple[Any, ...], list[Any]] = {}
    exc_routes: dict[tuple[Any, ...], int] = {}
    slots: dict[str, dict[str, Any]] = {}
    for s in snaps:
        for key in ("in_flight", "total", "errors", "overflow"):
            out[key] += s[key]
        out["ring"].extend(s["ring"])
        for name, n in s["exceptions"].items():
            out["exceptions"][name] = out["exceptions"].get(name, 0) + n
        for t, r, n in s["exc_routes"]:
            exc_routes[(t, r)] = exc_routes.get((t, r), 0) + n
        for row in s["series"]:
            _add(series.setdefault(tuple(row[:3]), []), row[3:])
        out["recent_errors"].extend(s["recent_errors"])
        out["recent_slow"].extend(s["recent_slow"])
        _add_map(out["upstreams"], s["upstreams"], max_at=4)
        _add_map(out["db"], s["db"])
        for name, c in s["caches"].items():
            have = out["caches"].setdefault(name, [0, 0, 0, 0, -1])
            _add(have, c[:4])
            if c[4] >= 0:
                have[4] = max(have[4], 0) + c[4]
        for sid, slot in s["slots"].items():
            have = slots.setdefault(sid, {"r": [], "c": {}, "u": {}, "q": 0})
            _add(have["r"], slot["r"], max_at=3)
            _add_map(have["c"], slot["c"])
            _add_map(have["u"], slot["u"])
            have["q"] += slot["q"]
    keep = _busiest_routes(series, max_routes)
    capped: dict[tuple[Any, ...], list[Any]] = {}
    for (method, route, status), values in series.items():
        row_key = (method, route if route in keep else OVERFLOW, status)
        _add(capped.setdefault(row_key, []), values)
    out["series"] = [[*k, *v] for k, v in capped.items()]
    exc_capped: dict[tuple[str, str], int] = {}
    for (t, r), n in exc_routes.items():
        exc_key = (t, r if r in keep else OVERFLOW)
        exc_capped[exc_key] = exc_capped.get(exc_key, 0) + n
    out["exc_routes"] = [[t, r, n] for (t, r), n in exc_capped.items()]
    out["slots"] = slots
    for key in ("recent_errors", "recent_slow"):
        out[key] = sorted(out[key], key=lambda e: e["time"])[-recent:]
    return out


def _busiest_routes(series: dict[tuple[Any, ...], list[Any]], limit: int) -> set[str]:
    counts: dict[str, float] = {}
    for (_method, route, _status), values in series.items():
        counts[route] = counts.get(route, 0) + values[0]
    if len(counts) <= limit:
        return set(counts)
    return set(sorted(counts, key=lambda r: -counts[r])[:limit])


def _as_archive(snap: dict[str, Any], oldest_slot: int) -> dict[str, Any]:
    """A dead worker's counters, without its live gauges and its ring."""
    snap = dict(snap, pid=None, in_flight=0, ring=[])
    snap["caches"] = {n: [*c[:3], 0, -1] for n, c in snap["caches"].items()}
    snap["slots"] = {k: v for k, v in snap["slots"].items() if int(k) >= oldest_slot}
    return snap


# -- files ------------------------------------------------------------------------------------
def write_snapshot(registry: Registry) -> dict[str, Any]:
    """Write this process's snapshot atomically; returns it."""
    state_dir = registry.state_dir
    if state_dir is None:
        return registry.snapshot()
    path = os.path.join(metrics_dir(state_dir), f"{registry.pid}.json")
    with registry.write_lock:
        if registry.claimed != registry.instance:  # first write of this process life
            os.makedirs(metrics_dir(state_dir), exist_ok=True)
            old = _load(path)
            if old is not None and old.get("instance") != registry.instance:
                _fold(state_dir, [path], registry)  # a previous process had our pid
            registry.claimed = registry.instance
        snap = registry.snapshot()
        _dump(path, snap)
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
        parts = [_as_archive(s, oldest) for s in found]
        archive = _load(archive_path)
        if archive is not None:
            parts.insert(0, archive)
        limit = registry.max_routes if registry else 200
        _dump(archive_path, _as_archive(merge(parts, max_routes=limit), oldest))
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


def read_merged(registry: Registry) -> dict[str, Any]:
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
                snap = _as_archive(snap, -1)
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

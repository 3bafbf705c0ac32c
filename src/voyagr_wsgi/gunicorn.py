"""gunicorn hooks: one import in ``gunicorn.conf.py`` runs a voyagr_wsgi stack correctly.

::

    # gunicorn.conf.py
    from voyagr_wsgi.gunicorn import *      # installs the hooks below (see __all__)
    wsgi_app = "app:application"            # application = compose(app, Settings.from_env())
    workers = 3                             # or WEB_CONCURRENCY, which gunicorn reads itself

gunicorn takes every module-level name of its config file that is one of its settings, so the
star import installs these hooks, and only these (``__all__`` lists gunicorn setting names
only). To add your own code to a hook, define it after the import and call ours::

    from voyagr_wsgi import gunicorn as voyagr

    def post_worker_init(worker):
        voyagr.post_worker_init(worker)
        ...

What runs where (gunicorn's process model: one master forks N workers and re-forks them for
its whole life, so the master must never own threads):

- ``on_starting`` (master, before sockets): removes the per-worker metrics files a previous
  run left in ``<state_dir>`` (the metrics area's ``multiprocess`` module).
- ``when_ready`` (master, before the first fork): logs a warning when several workers would
  each keep their own in-memory rate limits (use ``RATE_LIMIT_STORAGE=redis://...``).
- ``post_worker_init`` (worker, app loaded): finds the :class:`~voyagr_wsgi.Stack` in the app
  gunicorn loaded (``worker.wsgi``: the Stack itself, or an app holding it as ``wsgi_app`` /
  ``app`` / ``application``, e.g. ``flask_app.wsgi_app = compose(...)``) and calls
  ``stack.start()``. The stack's :class:`~voyagr_wsgi.services.Supervisor` starts per-process
  services at once and the singleton ones (backup scheduler, alert evaluation and dispatch)
  only in the worker that holds the ``flock`` on ``<state_dir>/services.lock``; the others
  retry every 2 s, so when that worker dies, even by SIGKILL, another takes over within a few
  seconds. Nothing runs in the master, with or without ``preload_app`` (nothing starts at
  import, so preloading only builds the stack).
- ``worker_exit`` (worker, after its loop; also after ``worker_int``/``worker_abort``, whose
  ``sys.exit`` ends in the same ``finally``): ``stack.stop(timeout)`` with
  ``timeout = graceful_timeout - margin`` (:func:`stop_timeout`) for all services together,
  so alert queues and metrics are flushed before the master's SIGKILL. gunicorn may also
  call this hook in the master for a worker that is already gone; it then does nothing.
- ``worker_int`` (worker, in the SIGINT/SIGQUIT signal handler): only logs. Stopping here
  could block on a lock the interrupted request holds; gunicorn calls ``worker_exit`` right
  after in the same process, which stops the stack.
- ``child_exit`` (master, a worker has exited): the metrics files of that pid are merged
  into the totals and removed (``metrics.multiprocess.worker_exited``).

The master's hooks find the state directory in the preloaded stack (``preload_app``), else in
``VOYAGR_STATE_DIR`` (default ``.voyagr``): an app that sets ``Settings(state_dir=...)`` in
code should export the same directory or preload. Keep it on local disk, one per instance.
Spec followed: gunicorn's "Server Hooks" settings and ``arbiter.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from types import ModuleType
from typing import Any

from ._env import Env
from .compose import Stack
from .errors import ConfigurationError

__all__ = [
    "child_exit",
    "on_starting",
    "post_worker_init",
    "when_ready",
    "worker_exit",
    "worker_int",
]

log = logging.getLogger("voyagr_wsgi.gunicorn")

#: attributes through which an app may hold the Stack (Flask ``wsgi_app``, wrappers' ``app``)
_HOLDERS = ("wsgi_app", "app", "application", "__wrapped__")
_MAX_DEPTH = 8


def find_stack(app: object) -> Stack | None:
    """The :class:`Stack` that ``app`` is or holds (breadth-first, a few levels deep)."""
    seen: set[int] = set()
    level: list[object] = [app]
    for _ in range(_MAX_DEPTH):
        following: list[object] = []
        for obj in level:
            if isinstance(obj, Stack):
                return obj
            if id(obj) in seen or obj is None:
                continue
            seen.add(id(obj))
            for name in _HOLDERS:
                inner = getattr(obj, name, None)
                if inner is not None and inner is not obj:
                    following.append(inner)
            extensions = getattr(obj, "extensions", None)  # Flask: voyagr_wsgi.flask.Voyagr
            if isinstance(extensions, dict) and extensions.get("voyagr") is not None:
                following.append(getattr(extensions["voyagr"], "stack", None))
        level = following
        if not level:
            break
    return None


def stop_timeout(graceful_timeout: float) -> float:
    """Seconds the services get to stop: gunicorn's ``graceful_timeout`` minus a margin.

    The margin (10 %, at least 1 s) leaves time for the worker to exit before the master's
    SIGKILL; ``graceful_timeout=30`` gives 27 s.
    """
    margin = max(1.0, 0.1 * graceful_timeout)
    return max(0.0, graceful_timeout - margin)


def state_dir(server: Any = None) -> str:
    """The state directory: the preloaded stack's, else ``VOYAGR_STATE_DIR`` (``.voyagr``)."""
    loaded = getattr(getattr(server, "app", None), "callable", None)
    stack = find_stack(loaded) if loaded is not None else None
    if stack is not None:
        return os.path.dirname(stack.supervisor.lock.path) or "."
    return Env().str("VOYAGR_STATE_DIR", ".voyagr")


def _metrics_multiprocess() -> ModuleType | None:
    name = "voyagr_wsgi.metrics.multiprocess"
    if importlib.util.find_spec(name) is None:
        return None
    return importlib.import_module(name)


# -- master ----------------------------------------------------------------------------


def on_starting(server: Any) -> None:
    """Master, before the sockets: remove stale per-worker metrics files of a previous run."""
    multiprocess = _metrics_multiprocess()
    if multiprocess is not None:
        multiprocess.reset(state_dir(server))


def when_ready(server: Any) -> None:
    """Master, before the first fork: warn about per-worker memory rate limits."""
    workers = int(getattr(server.cfg, "workers", 1))
    if workers > 1 and _memory_rate_limits():
        log.warning(
            "%d gunicorn workers each keep their own in-memory rate limits, so a client gets "
            "up to %d times the configured limit; set RATE_LIMIT_STORAGE=redis://... to share "
            "them (voyagr-wsgi check explains)",
            workers,
            workers,
        )


def _memory_rate_limits() -> bool:
    from .settings import Settings

    try:
        section = Settings.from_env().ratelimit
    except ConfigurationError as exc:  # the app may not read its settings from the env
        log.warning("voyagr_wsgi.gunicorn: cannot check the rate-limit store: %s", exc)
        return False
    return section.enabled and section.storage == "memory"


def child_exit(server: Any, worker: Any) -> None:
    """Master, a worker has exited: fold its metrics into the totals, remove its files."""
    multiprocess = _metrics_multiprocess()
    if multiprocess is not None:
        multiprocess.worker_exited(state_dir(server), worker.pid)


# -- worker ----------------------------------------------------------------------------


def post_worker_init(worker: Any) -> None:
    """Worker, app loaded: start the stack's services (singletons only in the elected one)."""
    stack = find_stack(getattr(worker, "wsgi", None))
    if stack is None:
        log.warning(
            "voyagr_wsgi.gunicorn: the app gunicorn loaded is not a voyagr_wsgi Stack and "
            "holds none (as wsgi_app/app/application); background services are not started"
        )
        return
    stack.start()


def worker_int(worker: Any) -> None:
    """Worker, SIGINT/SIGQUIT handler: log only; ``worker_exit`` follows and stops the stack."""
    log.info("worker %s interrupted: services stop in worker_exit", getattr(worker, "pid", "?"))


def worker_exit(server: Any, worker: Any) -> None:
    """Worker, after its loop: stop the services within gunicorn's graceful timeout."""
    if getattr(worker, "pid", None) != os.getpid():
        return  # called in the master for a worker that was already gone
    stack = find_stack(getattr(worker, "wsgi", None))
    if stack is None:
        return
    stack.stop(timeout=stop_timeout(float(worker.cfg.graceful_timeout)))

"""gunicorn hooks: one import in ``gunicorn.conf.py`` runs a voyagr_wsgi stack correctly.

::

    # gunicorn.conf.py
    from voyagr_wsgi.gunicorn import *      # installs the hooks below (see __all__)
    wsgi_app = "app:application"            # application = compose(app, Settings.from_env())
    workers = 3                             # or WEB_CONCURRENCY, which gunicorn reads itself

gunicorn takes every module-level name of its config file that is one of its settings, so the
star import installs these hooks and :data:`logconfig_dict`, and only these (``__all__``
lists gunicorn setting names only). To add your own code to a hook, define it after the import
and call ours::

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
- ``post_worker_init`` (worker, app loaded): removes gunicorn's ``Server: gunicorn`` response
  header (``VOYAGR_SERVER_HEADER=name`` sends that name instead), then finds the
  :class:`~voyagr_wsgi.Stack` in the app gunicorn loaded (``worker.wsgi``: the Stack itself, or
  an app holding it as ``wsgi_app`` / ``app`` / ``application``, e.g. ``flask_app.wsgi_app =
  compose(...)``) and calls ``stack.start()``. The stack's
  :class:`~voyagr_wsgi.services.Supervisor` starts per-process services at once and the
  singleton ones (backup scheduler, alert evaluation and dispatch) only in the worker that
  holds the ``flock`` on ``<state_dir>/services.lock``; the others retry every 2 s, so when
  that worker dies, even by SIGKILL, another takes over within a few seconds. Nothing runs in
  the master, with or without ``preload_app`` (nothing starts at import, so preloading only
  builds the stack).
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

Logs: :data:`logconfig_dict` (gunicorn's ``logconfig_dict`` setting, applied by gunicorn at
start) keeps gunicorn's own loggers as they are and sends voyagr's to the same streams with
timestamps: the access log (``voyagr_wsgi.access``, one line per request, the library's own
endpoints included) to stdout, the services' lines (which worker holds ``services.lock``, each
backup, each alert on the log channel) to stderr, at INFO. To use your own logging, assign
``logconfig_dict`` after the import (or ``logconfig_dict = {}`` and configure logging
yourself); a ``logconfig`` or ``logconfig_json`` file you set wins over ours too
(``on_starting`` re-applies it, since gunicorn would otherwise prefer the dict).

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
import re
from types import ModuleType
from typing import Any

from ._env import Env
from .compose import Stack
from .errors import ConfigurationError

__all__ = [
    "child_exit",
    "logconfig_dict",
    "on_starting",
    "post_worker_init",
    "when_ready",
    "worker_exit",
    "worker_int",
]

log = logging.getLogger("voyagr_wsgi.gunicorn")

_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"

#: gunicorn's ``logconfig_dict``: gunicorn's default loggers, plus voyagr's with timestamps
#: (see the module docs). gunicorn merges it over its own defaults at start.
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},  # gunicorn's default
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        # gunicorn logs requests whenever a logconfig_dict is set; ours replaces it (set
        # ``accesslog = "-"`` to have gunicorn's lines as well)
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        "voyagr_wsgi": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "voyagr_wsgi.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "voyagr",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "voyagr",
            "stream": "ext://sys.stderr",
        },
    },
    "formatters": {
        "voyagr": {"format": _FORMAT, "datefmt": "[%Y-%m-%d %H:%M:%S %z]"},
    },
}

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
    """Master, before the sockets: re-apply a ``logconfig``/``logconfig_json`` file the user
    set (gunicorn prefers our ``logconfig_dict`` over it), and remove stale per-worker metrics
    files of a previous run."""
    cfg = getattr(server, "cfg", None)
    if (
        cfg is not None
        and cfg.logconfig_dict == logconfig_dict
        and (cfg.logconfig or cfg.logconfig_json)
    ):
        cfg.set("logconfig_dict", {})
        for name in logconfig_dict["loggers"]:  # undo ours before theirs
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
        server.log.setup(cfg)
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
    """Worker, app loaded: set gunicorn's Server header, start the stack's services
    (singletons only in the elected one)."""
    server_header(Env().str("VOYAGR_SERVER_HEADER"))
    stack = find_stack(getattr(worker, "wsgi", None))
    if stack is None:
        log.warning(
            "voyagr_wsgi.gunicorn: the app gunicorn loaded is not a voyagr_wsgi Stack and "
            "holds none (as wsgi_app/app/application); background services are not started"
        )
        return
    stack.start()


def server_header(name: str) -> None:
    """Make gunicorn send ``Server: <name>``, or no Server header when ``name`` is empty.

    gunicorn writes ``Server: gunicorn`` itself, outside the WSGI app, so no layer can remove
    it; this patches gunicorn's response class in this worker (once; the removal costs one
    list filter per response). The value must be a plain token (letters, digits, ``._/-``).
    """
    from gunicorn.http import wsgi  # type: ignore[import-untyped]

    if name and not re.fullmatch(r"[A-Za-z0-9._/-]{1,64}", name):
        raise ConfigurationError(
            f"VOYAGR_SERVER_HEADER={name!r}: a product token (letters, digits, ._/-) or empty"
        )
    response: Any = wsgi.Response
    original = getattr(response, "_voyagr_default_headers", None)
    if original is None:
        original = response._voyagr_default_headers = response.default_headers
    wsgi.SERVER = name or "gunicorn"
    if name:
        response.default_headers = original
        return

    def default_headers(self: Any) -> list[str]:
        return [line for line in original(self) if not line.startswith("Server:")]

    response.default_headers = default_headers


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

"""Backups of the app's SQLite database: taken through SQLite, verified, kept, restorable.

Turn on with ``DATABASE_PATH`` (and ``BACKUP_DIR``); ``compose(app, Settings.from_env())``
then registers:

- ``context.components["backups"]``: the :class:`BackupManager` (``create()``, ``list()``,
  ``verify(id)``, ``restore(id)``, ``pin(id)``/``unpin(id)``, ``prune(dry_run=)``,
  ``status()``);
- the admin routes ``GET backups``, ``GET backups/retention``, ``POST backup/create``,
  ``POST backup/restore/{name}`` under ``/api/production/``;
- the ``backup:age`` health check;
- with ``BACKUP_ENABLED`` (default on) the :class:`BackupScheduler` service, run by
  ``stack.start()`` in exactly one process.

From the shell: ``voyagr-wsgi backup create | list | verify ID | restore ID [--offline] |
prune [--dry-run] | pin ID | unpin ID``.

S3 is an optional extra: ``pip install 'voyagr-wsgi[s3]'`` (boto3). With
``S3_BACKUP_ENABLED=true`` and boto3 missing, building the area raises
:class:`~voyagr_wsgi.ConfigurationError` naming the extra.

What loads when: importing this package loads only ``config`` (the settings); the names below
load on first use (PEP 562), and the manager with its pieces (sqlite3, zlib, boto3 when S3 is
on) loads when :func:`setup` finds ``DATABASE_PATH`` set, or the CLI runs.

The pieces, by role; dependencies point down, the pieces never import the manager:

- ``manager``: :class:`BackupManager`, composing the pieces below and nothing else;
- ``scheduler``, ``health``, ``endpoints``, ``cli``: the manager's users (service, health
  check, admin routes, shell commands);
- ``create``: snapshot -> verify + gzip + SHA-256 -> commit (with ``snapshot``);
- ``catalogue``: the stores (local, S3) and this set's backups in them, pins, retention;
- ``uploads``: the queue of backups to send to S3, retried until they arrive;
- ``restore``: restore by id, the safety backup, the swap through SQLite, the rollback;
- ``verify``: read back a stored backup and check everything (verify and restore);
- ``lock``: one run at a time (:class:`BackupBusy`);
- ``status``: the status file every process reads;
- ``retention`` (pure GFS planning), ``manifest``, ``ids``, ``store`` (the store
  protocol), ``local``, ``s3``, ``snapshot``, ``_fs``: the model, the stores and the
  SQLite/file primitives.

How a backup is made and why (online backup API, checks before keeping, gzip + SHA-256 in one
stream, manifest as the commit marker, restic-style GFS retention, restore by id through the
backup API) is told in the docstrings of ``snapshot``, ``manifest``, ``retention``,
``restore`` and ``s3``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .config import BackupSettings

if TYPE_CHECKING:
    from ..check import Finding
    from ..compose import BuildContext
    from ..settings import Settings
    from .lock import BackupBusy
    from .manager import BackupManager
    from .scheduler import BackupScheduler

__all__ = [
    "BackupBusy",
    "BackupManager",
    "BackupScheduler",
    "BackupSettings",
    "deploy_checks",
    "setup",
]

_LAZY = {"BackupBusy": ".lock", "BackupManager": ".manager", "BackupScheduler": ".scheduler"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def setup(settings: Settings, context: BuildContext) -> None:
    """Register the manager, admin routes, the health check and the scheduler service.

    With ``S3_BACKUP_ENABLED=true`` and boto3 missing this raises ConfigurationError.
    """
    config = settings.backups
    if not config.database_path:
        return
    from .endpoints import routes
    from .health import health_source
    from .manager import BackupManager
    from .scheduler import BackupScheduler

    manager = BackupManager(config)
    context.components["backups"] = manager
    context.admin_routes.extend(routes(manager))
    context.health.add(health_source(manager))
    if config.enabled:
        context.services.append(BackupScheduler(manager))


def deploy_checks(settings: Settings, environ: Mapping[str, str] | None = None) -> list[Finding]:
    from ..check import Finding

    config = settings.backups
    found: list[Finding] = []
    if not config.database_path:
        if config.s3_enabled:
            found.append(
                Finding(
                    "ERROR", "voyagr.E501", "S3_BACKUP_ENABLED is on but DATABASE_PATH is empty"
                )
            )
        return found
    if not os.path.exists(config.database_path):
        found.append(
            Finding(
                "WARNING",
                "voyagr.W501",
                f"DATABASE_PATH={config.database_path!r} does not exist yet",
            )
        )
    backup_dir = os.path.abspath(config.backup_dir)
    db_dir = os.path.dirname(os.path.abspath(config.database_path))
    if backup_dir == db_dir:
        found.append(
            Finding(
                "WARNING",
                "voyagr.W502",
                "BACKUP_DIR is the database's own folder; use a separate one",
            )
        )
    if not config.s3_enabled:
        found.append(
            Finding(
                "WARNING",
                "voyagr.W503",
                "S3_BACKUP_ENABLED is off: backups exist only on this machine's disk "
                "(on a PaaS with an ephemeral disk they vanish with the instance)",
            )
        )
    if not config.enabled:
        found.append(
            Finding("WARNING", "voyagr.W504", "BACKUP_ENABLED is off: no scheduled backups")
        )
    return found

"""Backups of the app's SQLite database: taken through SQLite, verified, kept, restorable.

Turn on with ``DATABASE_PATH`` (and ``BACKUP_DIR``); ``compose(app, Settings.from_env())``
then registers (:mod:`.area`):

- ``context.backups`` (``stack.components["backups"]``): the :class:`BackupManager`
  (``create()``, ``list()``, ``verify(id)``, ``restore(id)``, ``prune(dry_run=)``, ``status()``);
- the admin routes ``GET backups``, ``GET backups/retention``, ``POST backup/create``,
  ``POST backup/restore/{name}`` under ``/api/production/``;
- the ``backup:age`` health check;
- with ``BACKUP_ENABLED`` (default on) the :class:`BackupScheduler` service, run by
  ``stack.start()`` in exactly one process.

From the shell: ``voyagr-wsgi backup create | list | verify ID | restore ID [--offline] |
prune [--dry-run]``.

How a backup is made and why (online backup API, checks before keeping, gzip + SHA-256 in one
stream, manifest as the commit marker, restic-style GFS retention, restore by id through the
backup API) is told in the docstrings of ``snapshot``, ``manifest``, ``retention``,
``restore`` and ``s3``.

The names below load lazily: importing this package loads none of its modules (no sqlite3,
no boto3 until a setting asks for them).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .area import deploy_checks as deploy_checks
    from .config import BackupSettings as BackupSettings
    from .manager import BackupBusy as BackupBusy
    from .manager import BackupManager as BackupManager
    from .scheduler import BackupScheduler as BackupScheduler

_WHERE = {
    "BackupBusy": ".manager",
    "BackupManager": ".manager",
    "BackupScheduler": ".scheduler",
    "BackupSettings": ".config",
    "deploy_checks": ".area",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

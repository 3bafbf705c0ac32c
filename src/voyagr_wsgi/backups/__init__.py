"""Backups of the app's database: taken consistently, verified, kept, restorable.

Turn on with ``DATABASE_PATH`` (a SQLite file) or ``DATABASE_URL`` (a PostgreSQL database,
through the ``pg_dump``/``pg_restore`` client tools: :mod:`.postgres`), and ``BACKUP_DIR``;
``compose(app, Settings.from_env())`` then registers (:mod:`.area`):

- ``context.backups`` (``stack.components["backups"]``): the :class:`BackupManager`
  (``create()``, ``list()``, ``verify(id)``, ``restore(id)``, ``pin(id)``/``unpin(id)``,
  ``prune(dry_run=)``,
  ``status()``);
- the admin routes ``GET backups``, ``GET backups/retention``, ``POST backup/create``,
  ``POST backup/restore/{name}`` (both answer ``202 Accepted`` with a ``Location`` to the
  job) and ``GET backup/jobs/{id}`` under ``/api/production/``;
- the ``backup:age`` health check;
- with ``BACKUP_ENABLED`` (default on) the :class:`BackupScheduler` service, run by
  ``stack.start()`` in exactly one process: the scheduled backups and the queued jobs.

From the shell: ``voyagr-wsgi backup create | list | verify ID | restore ID [--offline] |
prune [--dry-run] | pin ID | unpin ID``.

S3 is an optional extra: ``pip install 'voyagr-wsgi[s3]'`` (boto3). With
``S3_BACKUP_ENABLED=true`` and boto3 missing, building the area raises
:class:`~voyagr_wsgi.ConfigurationError` naming the extra.

What loads when: importing this package loads only ``config`` (the settings); the names below
load on first use (PEP 562), and the manager with its pieces (sqlite3, zlib, boto3 when S3 is
on) loads when :func:`.area.contribute` finds ``DATABASE_PATH`` set, or the CLI runs; the
PostgreSQL engine (``postgres``, ``pg_restore``, ``pg_client``, ``pg_archive``) only with
``DATABASE_URL``.

The pieces, by role; dependencies point down, the pieces never import the manager:

- ``manager``: :class:`BackupManager`, composing the pieces below and nothing else;
- ``area``: what the settings contribute to a stack, and the deploy checks;
- ``scheduler``, ``runner``, ``health``, ``endpoints``, ``cli``: the manager's users
  (service, job runner, health check, admin routes, shell commands);
- ``jobs``: the on-disk queue of backup and restore jobs (submit, status, prune);
- ``engine``: the :class:`~.engine.Engine` protocol and the SQLite engine; ``postgres``
  (with ``pg_restore``, ``pg_client``, ``pg_archive``): the PostgreSQL engine;
- ``create``: snapshot -> verify + gzip + SHA-256 -> commit (with the engine);
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

from typing import TYPE_CHECKING

from .._lazy import lazy

if TYPE_CHECKING:
    from .area import deploy_checks as deploy_checks
    from .config import BackupSettings as BackupSettings
    from .lock import BackupBusy as BackupBusy
    from .manager import BackupManager as BackupManager
    from .scheduler import BackupScheduler as BackupScheduler

_WHERE = {
    "BackupBusy": ".lock",
    "BackupManager": ".manager",
    "BackupScheduler": ".scheduler",
    "BackupSettings": ".config",
    "deploy_checks": ".area",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy(__name__, _WHERE)

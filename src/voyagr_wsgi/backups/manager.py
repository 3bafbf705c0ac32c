"""``BackupManager``: the backup area's one entry point, composing its pieces.

The manager holds no backup logic of its own; it builds the pieces from the settings, runs
what changes a store or the database under the backup lock, and chains the steps:

- :mod:`~voyagr_wsgi.backups.lock`: one run at a time (:class:`BackupBusy` otherwise);
- :mod:`~voyagr_wsgi.backups.engine`: the database's engine (SQLite or PostgreSQL), which
  takes the snapshot and does the restore;
- :mod:`~voyagr_wsgi.backups.create`: snapshot -> verify + gzip + SHA-256 -> commit;
- :mod:`~voyagr_wsgi.backups.uploads`: to S3, failures queued and retried;
- :mod:`~voyagr_wsgi.backups.catalogue`: listing per store and set, pins, retention;
- :mod:`~voyagr_wsgi.backups.restore` (with :mod:`~voyagr_wsgi.backups.verify`): by id;
- :mod:`~voyagr_wsgi.backups.status`: the status file every process reads;
- :mod:`~voyagr_wsgi.backups.jobs`: the queue of backup and restore jobs the admin endpoints
  submit and the scheduler service runs (``manager.jobs``).

A backup: create -> upload (a failure keeps the local backup, is reported in ``status()``
and retried later) -> retention on each store (on S3 only once the upload succeeded).

Building a manager with ``S3_BACKUP_ENABLED=true`` imports boto3 (the ``s3`` extra) at once:
without it the build raises :class:`~voyagr_wsgi.ConfigurationError`
(``S3_BACKUP_ENABLED=true needs: pip install 'voyagr-wsgi[s3]'``); the client is made on
first use.

Usage::

    manager = BackupManager(settings.backups)
    manifest = manager.create()
    manager.restore("20260102T030405Z-0a1b2c3d")     # by id only
    manager.status()   # {"last_success_ts": ..., "last_failure_ts": ..., "last_error": ...}
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ..errors import BackupError
from .catalogue import Catalogue, policy_of, s3_opener
from .config import BackupSettings
from .create import Creator
from .engine import Engine, open_engine
from .ids import parse_id
from .jobs import JobQueue
from .local import LocalStore
from .lock import BackupBusy, BackupLock
from .manifest import Manifest
from .retention import Plan
from .snapshot import Progress
from .status import StatusFile
from .store import BackupStore, Listing
from .uploads import UploadQueue

__all__ = ["BackupBusy", "BackupManager"]


class BackupManager:
    def __init__(
        self,
        settings: BackupSettings,
        *,
        remote: BackupStore | None = None,
        now: Callable[[], float] = time.time,  # wall clock: backup ids and ages are dates
        progress: Progress | None = None,
    ) -> None:
        if not settings.engine:
            raise BackupError(
                "DATABASE_PATH is not set (nor DATABASE_URL): there is nothing to back up"
            )
        self.settings = settings
        self.set_name = settings.set_name
        #: the SQLite file ("" for PostgreSQL)
        self.db_path = os.path.abspath(settings.database_path) if settings.database_path else ""
        self.clock = clock = now
        self.local = LocalStore(settings.backup_dir)
        self.engine = open_engine(settings, self.local)
        self.status_file = StatusFile(
            os.path.join(self.local.directory, ".voyagr-backup-status.json"), clock=clock
        )
        self.lock = BackupLock(self.local)
        self.catalogue = Catalogue(
            self.local,
            remote,
            open_remote=None if remote is not None else s3_opener(settings),
            set_name=self.set_name,
            policy=policy_of(settings),
            status=self.status_file,
        )
        self.policy = self.catalogue.policy
        self.uploads = UploadQueue(self.catalogue, retry_s=settings.s3_retry_s)
        self.creator = Creator(
            self.engine,
            self.local,
            set_name=self.set_name,
            status=self.status_file,
            progress=progress,
        )
        self.restorer: Engine = self.engine  # verify, check_compatible, restore
        self.jobs = JobQueue(os.path.join(self.local.directory, ".jobs"), clock=clock)

    @property
    def remote(self) -> BackupStore | None:
        return self.catalogue.remote

    def stores(self) -> list[BackupStore]:
        return self.catalogue.stores()

    def locked(self) -> AbstractContextManager[None]:
        """Hold the backup lock (:class:`BackupBusy` at once if another run holds it)."""
        return self.lock.held()

    # -- backups -------------------------------------------------------------------------
    def create(
        self, *, reason: str = "manual", pinned: bool = False, progress: Progress | None = None
    ) -> Manifest:
        """Take, verify and commit one backup (then upload and apply retention).

        ``progress(done)`` is called with the bytes of the snapshot compressed so far.
        """
        with self.lock.held():
            return self._create(reason, pinned, retention=not pinned, progress=progress)

    def run_scheduled(self) -> Manifest | None:
        """A backup if none newer than the interval exists; pending uploads retried."""
        with self.lock.held():
            self.uploads.retry(force=False, now=self.clock())
            newest = self.status().get("last_success_ts")
            if newest is not None and self.clock() - newest < self.settings.interval_s:
                return None
            return self._create("scheduled", False, retention=True)

    def _create(
        self, reason: str, pinned: bool, *, retention: bool, progress: Progress | None = None
    ) -> Manifest:
        manifest = self.creator.take(
            now=self.clock(), reason=reason, pinned=pinned, progress=progress
        )
        uploaded = self.uploads.upload(manifest)
        if retention:
            self.catalogue.prune(now=self.clock(), remote=uploaded)
        return manifest

    def retry_uploads(self) -> list[str]:
        """Upload every backup whose upload failed earlier; the ids now uploaded."""
        with self.lock.held():
            return self.uploads.retry(force=True, now=self.clock())

    def status(self) -> dict[str, Any]:
        """``last_success_ts``, ``last_failure_ts``, ``last_error``, ``interval_s``, ..."""
        doc = self.status_file.read().as_dict()
        doc["interval_s"] = self.settings.interval_s
        if doc["last_success_ts"] is None:
            verified = [m for m in self.catalogue.listing(self.local).manifests if m.verified]
            if verified:
                doc["last_success_ts"] = verified[-1].created_ts
        return doc

    # -- catalogue -----------------------------------------------------------------------
    def list(self) -> dict[str, Listing]:
        """Each store's committed backups of this set, and what it could not read."""
        return self.catalogue.list()

    def find(self, name: object) -> tuple[BackupStore, Manifest]:
        """The store and manifest of backup ``name`` (validated first, then looked up)."""
        return self.catalogue.find(name)

    def pin(self, name: object, pinned: bool = True) -> Manifest:
        """Pin backup ``name`` (retention never deletes it) or unpin it, in every store that
        holds it; the pre-restore safety backups are made pinned."""
        backup_id = parse_id(name)  # a malformed id is refused before anything is touched
        with self.lock.held():
            return self.catalogue.pin(backup_id, pinned)

    def unpin(self, name: object) -> Manifest:
        return self.pin(name, False)

    def prune(self, *, dry_run: bool = False) -> dict[str, Plan[Manifest]]:
        """Apply retention to every store (``dry_run``: only the plans)."""
        if dry_run:
            return self.catalogue.plans(now=self.clock())
        with self.lock.held():
            return self.catalogue.prune(now=self.clock())

    # -- verify, restore -----------------------------------------------------------------
    def verify(self, name: object) -> Manifest:
        """Fetch and check backup ``name`` completely (size, SHA-256, gzip, integrity)."""
        store, manifest = self.find(name)
        with self.lock.held():
            self.restorer.verify(store, manifest)
        return manifest

    def restore(
        self,
        name: object,
        *,
        offline: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Replace the live database's content with backup ``name``; see restore.py.

        A backup whose schema or ``user_version`` differs from the live database's (taken
        before or after a migration) is refused with :class:`BackupIncompatible` unless
        ``force``: the running code expects the live schema. ``progress(done)`` is called
        with the bytes of the backup decompressed and verified so far.
        """
        store, manifest = self.find(name)
        if not force:
            self.restorer.check_compatible(manifest)
        with self.lock.held():
            return self.restorer.restore(
                store,
                manifest,
                safety=lambda: self._create("pre-restore", True, retention=False),
                now=self.clock(),
                offline=offline,
                force=force,
                progress=progress,
            )

"""Create: snapshot -> verify while gzip + SHA-256 stream it -> commit in the local store.

One call of :meth:`Creator.take` makes one backup of the database, through its engine
(:mod:`.engine`):

1. the engine's ``capture`` writes ``<id>.db.gz``, checked before it is kept. For SQLite
   (``DATABASE_PATH``), :func:`~voyagr_wsgi.backups.snapshot.take_snapshot` copies the live
   database through SQLite's online backup API into ``.staging/`` (one consistent read
   transaction), and :func:`~voyagr_wsgi.backups.snapshot.compress_and_verify` runs
   ``integrity_check`` and ``foreign_key_check`` on the copy while streaming it once through
   gzip and SHA-256; a copy that fails is moved to ``quarantine/`` and nothing is kept. For
   PostgreSQL (``DATABASE_URL``) see :mod:`.postgres`;
2. the ``.db.gz`` is renamed into place and the manifest written last
   (:meth:`~voyagr_wsgi.backups.local.LocalStore.put`): the manifest is the commit marker.

The outcome is recorded in the shared status file: a success clears ``last_error``; a
failure (a full disk is reported as such) sets it and re-raises as
:class:`~voyagr_wsgi.errors.BackupError`. Uploading and retention are the caller's next steps
(``uploads``, ``catalogue``); the caller also holds the backup lock.

Usage::

    creator = Creator("/data/app.db", LocalStore("/data/backups"), set_name="app",
                      status=status_file)
    manifest = creator.take(now=time.time(), reason="manual")
"""

from __future__ import annotations

import logging
import os

from ..errors import BackupError
from ._fs import nospace_error
from .engine import Engine, SqliteEngine
from .ids import new_id
from .local import LocalStore
from .manifest import Manifest
from .snapshot import Progress
from .status import StatusFile

__all__ = ["Creator"]

log = logging.getLogger("voyagr_wsgi.backups")


class Creator:
    def __init__(
        self,
        source: str | Engine,  # a SQLite file's path, or an engine
        local: LocalStore,
        *,
        set_name: str,
        status: StatusFile,
        progress: Progress | None = None,
    ) -> None:
        if isinstance(source, str):
            source = SqliteEngine(os.path.abspath(source), local)
        self.engine = source
        self.local = local
        self.set_name = set_name
        self.status = status
        self.progress = progress  # called with the bytes read so far while compressing

    def take(
        self,
        *,
        now: float,
        reason: str = "manual",
        pinned: bool = False,
        progress: Progress | None = None,
    ) -> Manifest:
        """Make, verify and commit one backup; its manifest as stored (``progress``: called
        with the bytes compressed so far, before the constructor's own callback)."""
        backup_id = new_id(now)
        try:
            manifest = self._commit(backup_id, now, reason, pinned, self._progress(progress))
        except BackupError as exc:
            self.status.record(error=f"backup failed: {exc}")
            raise
        except OSError as exc:
            error = nospace_error(exc, self.local.directory) or BackupError(f"{exc}")
            self.status.record(error=f"backup failed: {error}")
            raise error from exc
        self.status.record(success=manifest)
        log.info("backup %s committed (%d bytes gz)", backup_id, manifest.gz_bytes)
        return manifest

    def _progress(self, extra: Progress | None) -> Progress | None:
        callbacks = [p for p in (extra, self.progress) if p is not None]
        if len(callbacks) < 2:
            return callbacks[0] if callbacks else None

        def both(done: int) -> None:
            for callback in callbacks:
                callback(done)

        return both

    def _commit(
        self, backup_id: str, now: float, reason: str, pinned: bool, progress: Progress | None
    ) -> Manifest:
        captured = self.engine.capture(backup_id, self.local, progress)
        stored = captured.stored
        manifest = Manifest(
            backup_id,
            now,
            stored.db_bytes,
            stored.gz_bytes,
            stored.sha256_db,
            stored.sha256_gz,
            captured.page_size,
            captured.user_version,
            captured.schema_sha256,
            captured.sqlite_version,
            verified=True,
            pinned=pinned,
            reason=reason,
            backup_set=self.set_name,
            engine=captured.engine,
            server_version=captured.server_version,
            row_counts=captured.row_counts,
        )
        return self.local.put(manifest, stored.path)

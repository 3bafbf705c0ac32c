"""One backup run at a time: a thread lock plus an ``flock`` beside the backups.

Everything that changes the backup folder or the live database (create, prune, pin, verify,
restore, upload retries) runs inside :meth:`BackupLock.held`: a ``threading.Lock`` for this
process and an exclusive ``flock`` on ``BACKUP_DIR/.voyagr-backup.lock`` (never on the
database) for the others. A second runner, here or in another process (the CLI while the
scheduler works), gets :class:`BackupBusy` at once instead of waiting or overlapping. Once
both are held, the temp files of interrupted runs are removed: no run of this host can be
writing them.

Usage::

    lock = BackupLock(LocalStore("/data/backups"))
    with lock.held():
        ...
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from ..errors import BackupError
from ..services import FileLock
from .local import LocalStore

__all__ = ["BackupBusy", "BackupLock"]

log = logging.getLogger("voyagr_wsgi.backups")


class BackupBusy(BackupError):
    """Another backup or restore holds the lock; nothing was done."""


class BackupLock:
    def __init__(self, local: LocalStore) -> None:
        self.local = local
        self._flock = FileLock(os.path.join(local.directory, ".voyagr-backup.lock"))
        self._mutex = threading.Lock()

    @property
    def path(self) -> str:
        return self._flock.path

    def check_free(self) -> None:
        """:class:`BackupBusy` if a run holds the lock now; nothing stays held (a request
        probes before it queues a job)."""
        with self._both():
            pass

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold both locks (:class:`BackupBusy` at once if either is taken)."""
        with self._both():
            for path in self.local.clean_leftovers():
                log.info("removed %s left by an interrupted run", path)
            yield

    @contextlib.contextmanager
    def _both(self) -> Iterator[None]:
        """The thread lock, then the file lock; :class:`BackupBusy` at once if either is
        taken."""
        if not self._mutex.acquire(blocking=False):
            raise BackupBusy("another backup or restore is running in this process")
        try:
            self.local.ensure()
            if not self._flock.try_acquire():
                raise BackupBusy(f"another process holds {self._flock.path}; try again later")
            try:
                yield
            finally:
                self._flock.release()
        finally:
            self._mutex.release()

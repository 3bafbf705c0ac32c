"""The upload queue: committed local backups on their way to S3, retried until they arrive.

A backup is committed locally first; its upload follows. A failed upload never loses the
backup: the id joins ``pending_uploads`` in the shared status file (so every process and the
``backup:age`` health check see it), ``last_error`` says why, and the queue is retried in
order, oldest first, ``BACKUP_S3_RETRY_SECONDS`` after the last failure (the scheduler asks
:meth:`UploadQueue.retry` on each tick; ``force=True`` retries at once). A retry stops at the
first failure (S3 is most likely still down); an id whose local backup was deleted meanwhile
leaves the queue with nothing sent. Without a remote store the queue is empty.

Usage (under the backup lock)::

    queue = UploadQueue(catalogue, retry_s=900.0)
    queue.upload(manifest)          # True when stored remotely (or there is no remote)
    queue.retry(force=False, now=time.time())   # the ids uploaded now
"""

from __future__ import annotations

import logging

from ..errors import BackupError, StorageError
from .catalogue import Catalogue
from .manifest import Manifest

__all__ = ["UploadQueue"]

log = logging.getLogger("voyagr_wsgi.backups")


class UploadQueue:
    def __init__(self, catalogue: Catalogue, *, retry_s: float) -> None:
        self.catalogue = catalogue
        self.status = catalogue.status
        self.retry_s = retry_s  # seconds after the last failure before a retry is due

    def upload(self, manifest: Manifest) -> bool:
        """Send ``manifest``'s backup to the remote store; False (and queued) if it failed."""
        remote = self.catalogue.remote
        if remote is None:
            return True
        try:
            remote.put(manifest, self.catalogue.local.data_path(manifest))
        except Exception as exc:
            expected = isinstance(exc, (BackupError, StorageError))
            reason = f"{exc}" if expected else f"{exc!r}"
            self.status.record(
                upload_failed=manifest.id, error=f"upload failed (will retry): {reason}"
            )
            if expected:
                log.warning("backup %s kept locally; upload failed: %s", manifest.id, exc)
            else:
                log.exception("backup %s kept locally; upload raised", manifest.id)
            return False
        self.status.record(uploaded=manifest.id)
        return True

    def retry(self, *, force: bool, now: float) -> list[str]:
        """Upload the queued backups if a retry is due (or ``force``); the ids now uploaded."""
        status = self.status.read()
        if not status.pending_uploads or self.catalogue.remote is None:
            return []
        failed_at = status.last_upload_failure_ts or 0.0
        if not force and now - failed_at < self.retry_s:
            return []
        listing = self.catalogue.listing(self.catalogue.local)
        done = []
        for backup_id in list(status.pending_uploads):
            manifest = listing.find(backup_id)
            if manifest is None:
                self.status.record(uploaded=backup_id)  # deleted locally: nothing to send
            elif self.upload(manifest):
                done.append(backup_id)
            else:
                break
        return done

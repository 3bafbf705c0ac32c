"""The upload queue: committed local backups on their way to S3, retried until they arrive.

A backup is committed locally first; its upload follows. The id joins ``pending_uploads`` in
the shared status file *before* the upload starts (with the time in ``pending_since``) and
leaves it only after the S3 store verified the object (size, SHA-256, encryption asked for)
and wrote its manifest. So a process killed at any point of the upload (``SIGKILL``, an OOM
kill, a worker timeout) leaves the backup pending, never silently missing: every process and
the ``backup:age`` health check see it, and the health check warns once a backup stayed
pending longer than ``BACKUP_S3_RETRY_SECONDS``. A failed upload also sets ``last_error``.
The queue is retried in order, oldest first, ``BACKUP_S3_RETRY_SECONDS`` after the last
failure, and at once when no failure was recorded (an upload interrupted by a kill; callers
hold the backup lock, so no upload of this host is in flight then). The scheduler asks
:meth:`UploadQueue.retry` on each tick; ``force=True`` retries at once. A retry stops at the
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
        self.status.record(upload_pending=manifest.id)  # first: a kill from here on is seen
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
        interrupted = any(
            (status.pending_since.get(i) or 0.0) > failed_at for i in status.pending_uploads
        )  # started after the last failure and never finished: the process was killed
        if not force and not interrupted and now - failed_at < self.retry_s:
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

"""The backup status shared by every process: last success, last failure, pending uploads.

Kept in ``BACKUP_DIR/.voyagr-backup-status.json`` (atomic rewrite under the backup lock) so
the CLI, the scheduler in the elected worker and the health check of any worker agree. Every
piece of the area records its events here (:meth:`StatusFile.record`, stamped with the
injected clock): ``create`` a success or failure, ``uploads`` a failed or done upload,
``catalogue`` a failed retention run.
``BackupManager.status()`` returns::

    {"last_success_ts": 1767322800.0 | None,   # epoch seconds of the last verified backup
     "last_failure_ts": float | None,          # last failed backup or upload
     "last_error": str | None,                 # what failed (None once a later run succeeds)
     "interval_s": 86400.0,
     "pending_uploads": ["<id>", ...],          # committed locally, not yet verified in S3
     "pending_since": {"<id>": 1767322801.0},  # when each pending upload was first started
     "successes_total": 12, "failures_total": 1}  # runs recorded since the folder was new

An upload is recorded as pending *before* it starts and cleared only once the object was
verified in S3, so a process killed at any point of an upload leaves it pending: the next
retry sends it, and the health check warns once it stayed pending past the retry interval.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ._fs import atomic_write

__all__ = ["Status", "StatusFile"]

log = logging.getLogger("voyagr_wsgi.backups")


@dataclass
class Status:
    last_success_ts: float | None = None
    last_failure_ts: float | None = None
    last_error: str | None = None
    last_backup_id: str | None = None
    last_upload_failure_ts: float | None = None
    pending_uploads: list[str] = field(default_factory=list)
    pending_since: dict[str, float] = field(default_factory=dict)
    successes_total: int = 0  # verified backups recorded (counters for Prometheus)
    failures_total: int = 0  # failed backups or uploads recorded

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StatusFile:
    def __init__(self, path: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock  # wall clock: the timestamps are read by people and alerts

    def read(self) -> Status:
        try:
            with open(self.path, "rb") as handle:
                doc = json.loads(handle.read())
        except FileNotFoundError:
            return Status()
        except (OSError, ValueError) as exc:
            log.warning("unreadable backup status file %s: %s", self.path, exc)
            return Status()
        status = Status()
        for key, value in doc.items() if isinstance(doc, dict) else ():
            if key in status.__dataclass_fields__:
                setattr(status, key, value)
        if not isinstance(status.pending_uploads, list):
            status.pending_uploads = []
        if not isinstance(status.pending_since, dict):
            status.pending_since = {}
        return status

    def record(
        self,
        *,
        success: Any = None,  # a Manifest
        error: str | None = None,
        upload_pending: str | None = None,
        upload_failed: str | None = None,
        uploaded: str | None = None,
    ) -> None:
        """Fold one event into the file (callers hold the backup lock)."""
        now = self.clock()
        status = self.read()
        if success is not None:
            status.last_success_ts, status.last_backup_id = success.created_ts, success.id
            status.last_error = None
            status.successes_total = _count(status.successes_total) + 1
        if error is not None:
            status.last_failure_ts, status.last_error = now, error
            status.failures_total = _count(status.failures_total) + 1
        for pending in (upload_pending, upload_failed):
            if pending is not None and pending not in status.pending_uploads:
                status.pending_uploads.append(pending)
            if pending is not None:
                status.pending_since.setdefault(pending, now)
        if upload_failed is not None:
            status.last_upload_failure_ts = now
        if uploaded is not None:
            status.pending_since.pop(uploaded, None)
        if uploaded is not None and uploaded in status.pending_uploads:
            status.pending_uploads.remove(uploaded)
            if not status.pending_uploads and status.last_error and "upload" in status.last_error:
                status.last_error = None
        try:
            self.write(status)
        except OSError:
            log.exception("could not write the backup status file %s", self.path)

    def write(self, status: Status) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        atomic_write(self.path, json.dumps(status.as_dict(), indent=1).encode())


def _count(value: Any) -> int:
    """A counter read back from the file (0 when the file predates counters or is damaged)."""
    return value if isinstance(value, int) and value >= 0 else 0

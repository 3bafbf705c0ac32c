"""Backup and restore jobs: a small JSON queue on disk that any process writes and reads.

A backup or a restore can take minutes (a large database, a slow or stalled S3), longer than
a request may last (gunicorn kills a worker after ``--timeout``, 30 s by default). So the
admin endpoints only *submit* a job and answer ``202 Accepted`` with a ``Location`` to its
status; the job runs in the process that runs the background services (the
:class:`~voyagr_wsgi.backups.scheduler.BackupScheduler`, a singleton service: one elected
gunicorn worker), which polls the queue every second. Any worker answers the status by
reading the job's file.

One file per job, ``BACKUP_DIR/.jobs/<id>.json`` (written atomically, temp file + rename),
``id`` 16 lowercase hex digits (a status request with anything else is refused before a
path is made). A job document::

    {"id": "4f1c...", "kind": "create" | "restore",
     "state": "queued" | "running" | "succeeded" | "failed",
     "params": {"name": "<backup id>", "force": false},        # restore only
     "submitted_ts": 1767322800.0, "started_ts": ..., "finished_ts": ...,
     "progress": {"phase": "compress", "bytes_done": 1048576, "bytes_total": 3145728},
     "result": {"backup": {<manifest>}}                        # succeeded (create)
            | {"restored": "<id>", "safety_backup": "<id>"},   # succeeded (restore)
     "problem": {"type": ..., "title": ..., "status": 422, "detail": ...}}   # failed

``progress`` is filled while ``running`` where the pipeline can tell: the bytes of the
snapshot compressed (create) or of the backup decompressed and verified (restore), against
the database's size or the manifest's ``db_bytes``; it is written at most every 0.5 s.

Without a services process (a plain WSGI server that never calls ``stack.start()``, or
``BACKUP_ENABLED=false``) nobody runs the queue: a job stays ``queued``. The CLI
(``voyagr-wsgi backup create | restore``) always runs directly. A job that finds the backup
lock taken (a CLI run) stays queued and is tried again on the next poll; a job found
``running`` when the runner starts (its process was killed) is marked ``failed``. Finished
jobs are pruned after :data:`KEEP_S` (7 days) and beyond the :data:`KEEP_FINISHED` (100)
newest; at most :data:`MAX_PENDING` (10) jobs may wait (``backup-busy`` otherwise).

Usage::

    queue = JobQueue("/data/backups/.jobs")
    job = queue.submit("restore", {"name": backup_id, "force": False})
    queue.get(job["id"])["state"]        # "queued" ... "succeeded"
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from .._jsonfile import write_json
from ..errors import (
    BackupError,
    BackupIncompatible,
    BackupNotFound,
    BackupVerificationError,
    InvalidBackupId,
    StorageError,
)
from ..problem import ProblemError, body
from .lock import BackupBusy

__all__ = ["KEEP_FINISHED", "KEEP_S", "MAX_PENDING", "JobQueue", "problem_of"]

log = logging.getLogger("voyagr_wsgi.backups")

JOB_ID_RE = re.compile(r"\A[0-9a-f]{16}\Z", re.ASCII)
KEEP_S = 7 * 86_400.0  # seconds a finished job stays readable
KEEP_FINISHED = 100
MAX_PENDING = 10
PROGRESS_EVERY_S = 0.5
Kind = Literal["create", "restore"]
NOT_RUN_NOTE = (
    "jobs run in the process that runs the background services (stack.start(), "
    "BACKUP_ENABLED=true); without one the job stays queued"
)


def problem_of(exc: BaseException) -> tuple[str, str] | None:
    """The problem kind and detail for a backup error (None: not one of ours)."""
    for types, kind in (
        (InvalidBackupId, "invalid-backup-id"),
        (BackupNotFound, "backup-not-found"),
        (BackupBusy, "backup-busy"),
        (BackupIncompatible, "backup-incompatible"),
        (BackupVerificationError, "backup-verification-failed"),
        (BackupError, "backup-failed"),
        (StorageError, "storage-failed"),
    ):
        if isinstance(exc, types):
            return kind, str(exc)
    if isinstance(exc, OSError):
        return "backup-failed", f"{type(exc).__name__}: {exc}"
    return None


class JobQueue:
    def __init__(self, directory: str, *, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock  # wall clock: the timestamps are read by people

    def _path(self, job_id: str) -> str:
        return os.path.join(self.directory, f"{job_id}.json")

    def submit(self, kind: Kind, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a new ``queued`` job; :class:`BackupBusy` when too many already wait."""
        self.prune()
        pending = [j for j in self.all() if j["state"] in ("queued", "running")]
        if len(pending) >= MAX_PENDING:
            raise BackupBusy(f"{len(pending)} backup jobs are already waiting; try again later")
        job: dict[str, Any] = {
            "id": secrets.token_hex(8),
            "kind": kind,
            "state": "queued",
            "params": dict(params or {}),
            "submitted_ts": self.clock(),
            "started_ts": None,
            "finished_ts": None,
            "progress": None,
            "note": NOT_RUN_NOTE,
        }
        write_json(self._path(job["id"]), job)
        return job

    def get(self, job_id: object) -> dict[str, Any]:
        """The job ``job_id``: ``invalid-job-id`` (400) or ``job-not-found`` (404) problems."""
        if not isinstance(job_id, str) or JOB_ID_RE.match(job_id) is None:
            raise ProblemError("invalid-job-id", "a job id is 16 lowercase hex digits")
        job = self._read(self._path(job_id))
        if job is None:
            raise ProblemError(
                "job-not-found", "no backup job has this id (finished jobs are kept 7 days)"
            )
        return job

    def all(self) -> list[dict[str, Any]]:
        """Every readable job, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        jobs = []
        for name in names:
            if name.endswith(".json") and JOB_ID_RE.match(name[:-5]):
                job = self._read(os.path.join(self.directory, name))
                if job is not None:
                    jobs.append(job)
        jobs.sort(key=lambda j: (float(j.get("submitted_ts") or 0.0), j["id"]))
        return jobs

    def next_queued(self) -> dict[str, Any] | None:
        return next((j for j in self.all() if j["state"] == "queued"), None)

    def update(self, job: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Write ``job`` with ``changes`` (only the runner writes a submitted job)."""
        job.update(changes)
        write_json(self._path(job["id"]), job)
        return job

    def fail(self, job: dict[str, Any], kind: str, detail: str) -> dict[str, Any]:
        problem = json.loads(body(kind, detail))
        return self.update(job, state="failed", finished_ts=self.clock(), problem=problem)

    def fail_interrupted(self) -> list[str]:
        """Mark ``running`` jobs failed: called when the one runner starts."""
        failed = []
        for job in self.all():
            if job["state"] == "running":
                self.fail(job, "backup-failed", "interrupted: the process running it stopped")
                failed.append(job["id"])
        return failed

    def reporter(self, job: dict[str, Any], phase: str, total: int) -> Callable[[int], None]:
        """A progress callback writing ``bytes_done`` at most every 0.5 s."""
        last = [float("-inf")]

        def report(done: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                write(done)

        def write(done: int) -> None:
            progress = {"phase": phase, "bytes_done": done, "bytes_total": total}
            self.update(job, progress=progress)

        write(0)  # the phase and total at once; the first bytes are written when they come
        return report

    def prune(self) -> list[str]:
        """Remove finished jobs older than :data:`KEEP_S` or beyond the newest 100."""
        now = self.clock()
        finished = [j for j in self.all() if j["state"] in ("succeeded", "failed")]
        doomed = finished[: max(0, len(finished) - KEEP_FINISHED)]
        doomed += [
            j
            for j in finished[len(doomed) :]
            if now - float(j.get("finished_ts") or j.get("submitted_ts") or 0.0) > KEEP_S
        ]
        for job in doomed:
            try:
                os.unlink(self._path(job["id"]))
            except FileNotFoundError:
                pass
        return [j["id"] for j in doomed]

    @staticmethod
    def _read(path: str) -> dict[str, Any] | None:
        try:
            with open(path, "rb") as handle:
                doc = json.loads(handle.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("unreadable backup job file %s: %s", path, exc)
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None
